#include "framework/model.h"

#include <cmath>

#include "base/error.h"

namespace eat {

const OptionValue& FamilyOptions::at(const std::string& name) const {
  auto it = values_.find(name);
  EAT_CHECK(it != values_.end(), "model option '", name, "' is not set (not declared by the family?)");
  return it->second;
}

int64_t FamilyOptions::get_int(const std::string& name) const {
  const auto* v = std::get_if<int64_t>(&at(name));
  EAT_CHECK(v, "model option '", name, "' is not an integer");
  return *v;
}

double FamilyOptions::get_float(const std::string& name) const {
  const OptionValue& v = at(name);
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  const auto* d = std::get_if<double>(&v);
  EAT_CHECK(d, "model option '", name, "' is not a number");
  return *d;
}

int64_t FamilyOptions::hidden_width(const std::string& name, int64_t d_model) const {
  const int64_t w = get_int(name);
  return w != 0 ? w : static_cast<int64_t>(std::llround(8.0 * static_cast<double>(d_model) / 3.0));
}

bool FamilyOptions::get_bool(const std::string& name) const {
  const auto* v = std::get_if<bool>(&at(name));
  EAT_CHECK(v, "model option '", name, "' is not a boolean");
  return *v;
}

const std::string& FamilyOptions::get_string(const std::string& name) const {
  const auto* v = std::get_if<std::string>(&at(name));
  EAT_CHECK(v, "model option '", name, "' is not a string");
  return *v;
}

std::string family_list() {
  std::string out;
  for (const auto& n : family_names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::unique_ptr<LanguageModel> build_model(const ModelConfig& config, Generator& gen) {
  const FamilySpec* spec = find_family(config.family);
  if (!spec) {
    fail("unknown model family '", config.family, "' (known: ", family_list(), ")");
  }
  return spec->build(config, gen);
}

}  // namespace eat
