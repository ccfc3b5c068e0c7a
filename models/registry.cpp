// The model families eat knows, by recipe name. A new family adds one line here.
#include <vector>

#include "framework/model.h"
#include "models/based.h"
#include "models/moh.h"
#include "models/rat.h"
#include "models/titans.h"
#include "models/transformer.h"
#include "models/transnormer.h"

namespace eat {

namespace {
const std::vector<FamilySpec>& families() {
  static const std::vector<FamilySpec> all = {models::transformer_family(), models::transnormer_family(),
                                              models::based_family(), models::rat_family(),
                                              models::moh_family(), models::titans_family()};
  return all;
}
}  // namespace

const FamilySpec* find_family(const std::string& name) {
  for (const FamilySpec& f : families())
    if (f.name == name) return &f;
  return nullptr;
}

std::vector<std::string> family_names() {
  std::vector<std::string> out;
  for (const FamilySpec& f : families()) out.push_back(f.name);
  return out;
}

}  // namespace eat
