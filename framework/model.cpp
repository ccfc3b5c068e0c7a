#include "framework/model.h"

#include <cmath>
#include <cstdio>
#include <set>

#include "base/error.h"
#include "framework/nn/sequence_mixer.h"

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

const IntList& FamilyOptions::get_int_list(const std::string& name) const {
  const auto* v = std::get_if<IntList>(&at(name));
  EAT_CHECK(v, "model option '", name, "' is not a list of integers");
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
  std::unique_ptr<LanguageModel> model = spec->build(config, gen);
  model->family_ = spec;
  return model;
}

void LanguageModel::set_sequence_parallel(Communicator* sp_group, int64_t chain_slices) {
  const std::string family = family_ ? family_->name : "model";
  std::vector<std::pair<std::string, SequenceMixer*>> mixers;
  for (const auto& [path, module] : descendants())
    if (auto* mixer = dynamic_cast<SequenceMixer*>(module)) mixers.emplace_back(path, mixer);
  if (sp_group && sp_group->size() > 1) {
    EAT_CHECK(family_ && family_->sequence_parallel && !mixers.empty(), family_ ? "the " + family + " family" : "this model",
              " does not support sequence parallelism (parallel.sp > 1)");
    for (const auto& [path, mixer] : mixers) {
      const std::string why = mixer->sequence_parallel_refusal();
      EAT_CHECK(why.empty(), family, ": sequence parallelism ", why, " (", path, ")");
    }
  }
  for (const auto& [path, mixer] : mixers) mixer->set_sequence_parallel(sp_group, path, chain_slices);
}

int64_t defined_bytes(std::initializer_list<Tensor> tensors) {
  int64_t bytes = 0;
  for (const Tensor& t : tensors)
    if (t.defined()) bytes += static_cast<int64_t>(t.nbytes());
  return bytes;
}

std::string check_layer_list(const std::string& key, const IntList& list, int64_t n_layers) {
  std::set<int64_t> seen;
  for (int64_t l : list) {
    if (l < 0 || l >= n_layers)
      return key + ": layer " + std::to_string(l) + " is out of range (model.n_layers = " + std::to_string(n_layers) +
             ": layers 0 to " + std::to_string(n_layers - 1) + ")";
    if (!seen.insert(l).second) return key + ": layer " + std::to_string(l) + " is listed twice";
  }
  return "";
}

std::string choice_list(const OptionSpec& option) {
  std::string out;
  for (size_t i = 0; i < option.choices.size(); ++i)
    out += (i == 0 ? "" : i + 1 == option.choices.size() ? " or " : ", ") + ("\"" + option.choices[i].value + "\"");
  return out;
}

namespace {

// A default as recipes/README.md writes it: 10000.0, 1e-5, true, `"tiled"`, `[1, 6]`.
std::string default_markdown(const OptionValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (const auto* list = std::get_if<IntList>(&v)) {
    std::string out = "`[";
    for (size_t k = 0; k < list->size(); ++k) out += (k ? ", " : "") + std::to_string((*list)[k]);
    return out + "]`";
  }
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const auto* s = std::get_if<std::string>(&v)) return "`\"" + *s + "\"`";
  const double d = std::get<double>(v);
  char buf[32];
  if (d == std::floor(d) && std::fabs(d) < 1e6) {
    std::snprintf(buf, sizeof buf, "%.1f", d);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%g", d);
  std::string text = buf;  // "1e-05" -> "1e-5"
  const size_t e = text.find("e-0");
  return e == std::string::npos ? text : text.erase(e + 2, 1);
}

const char* type_markdown(const OptionValue& v) {
  switch (v.index()) {
    case 0: return "integer";
    case 1: return "float";
    case 2: return "bool";
    case 3: return "string";
    default: return "integer list";
  }
}

}  // namespace

std::string option_table_markdown(const FamilySpec& family) {
  std::string out = "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const OptionSpec& o : family.options) {
    std::string meaning = o.doc;
    for (size_t i = 0; i < o.choices.size(); ++i) {
      meaning += i == 0 ? ": " : i + 1 == o.choices.size() ? " or " : ", ";
      meaning += "`\"" + o.choices[i].value + "\"`";
      if (!o.choices[i].doc.empty()) meaning += " (" + o.choices[i].doc + ")";
    }
    out += "| `" + o.name + "` | " + type_markdown(o.default_value) + " | " + default_markdown(o.default_value) + " | " +
           meaning + " |\n";
  }
  return out;
}

}  // namespace eat
