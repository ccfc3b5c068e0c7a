#include "framework/train/checkpoint.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "base/error.h"
#include "framework/ops.h"
#include "framework/autograd.h"
#include "framework/io/checkpoint_dir.h"
#include "framework/io/safetensors.h"
#include "framework/version.h"

namespace eat {

namespace fs = std::filesystem;

nlohmann::json TrainState::to_json() const {
  nlohmann::json j = {{"format", "eat-checkpoint"},
                      {"format_version", 1},
                      {"eat_version", version()},
                      {"step", step},
                      {"samples_consumed", samples_consumed},
                      {"world_size", world_size},
                      {"sp", sp},
                      {"recipe_hash", recipe_hash},
                      {"family", family},
                      {"num_parameters", num_parameters}};
  if (!tokenizer.empty()) {
    j["tokenizer"] = tokenizer;
    j["tokenizer_hash"] = tokenizer_hash;
  }
  return j;
}

TrainState TrainState::from_json(const nlohmann::json& j, const std::string& path) {
  EAT_CHECK(j.value("format", "") == "eat-checkpoint", path, ": not an eat checkpoint state file");
  EAT_CHECK(j.value("format_version", 0) == 1, path, ": checkpoint format version ", j.value("format_version", 0),
            ", this eat reads version 1");
  // Counts must be whole numbers: nlohmann would truncate 1.5 to 1 without a word.
  for (const char* key : {"step", "samples_consumed", "world_size", "sp", "num_parameters"})
    EAT_CHECK(!j.contains(key) || j.at(key).is_number_integer(), path, ": ", key, " = ", j.at(key).dump(),
              " must be a whole number");
  TrainState s;
  try {
    s.step = j.at("step").get<int64_t>();
    s.samples_consumed = j.at("samples_consumed").get<int64_t>();
    s.world_size = j.at("world_size").get<int>();
    s.sp = j.at("sp").get<int64_t>();
    s.recipe_hash = j.at("recipe_hash").get<std::string>();
    s.family = j.at("family").get<std::string>();
    s.num_parameters = j.at("num_parameters").get<int64_t>();
    s.tokenizer = j.value("tokenizer", "");  // absent: bytes
    s.tokenizer_hash = j.value("tokenizer_hash", "");
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": missing or malformed field (", e.what(), ")");
  }
  EAT_CHECK(s.step >= 0, path, ": step = ", s.step, " must be >= 0");
  // No step trains more than 2^24 sequences: a larger count is a damaged file, not a position.
  EAT_CHECK(s.samples_consumed >= 0 && s.samples_consumed <= s.step * (int64_t{1} << 24), path,
            ": samples_consumed = ", s.samples_consumed, " is impossible after ", s.step, " steps");
  EAT_CHECK(s.world_size >= 1 && s.sp >= 1 && s.num_parameters >= 0, path, ": world_size = ", s.world_size, ", sp = ",
            s.sp, ", num_parameters = ", s.num_parameters, " are not a training layout");
  return s;
}

void save_checkpoint_files(const std::string& dir, const Recipe& recipe, const LanguageModel& model,
                           const AdamW* optimizer, const TrainState& state, const std::string& tokenizer_model) {
  std::vector<std::pair<std::string, Tensor>> weights;
  for (const Parameter& p : model.parameters()) weights.emplace_back(p.name, p.tensor);
  save_safetensors((fs::path(dir) / "model.safetensors").string(), weights,
                   {{"format", "eat"}, {"family", recipe.model.family}});
  if (optimizer) {
    std::vector<std::pair<std::string, Tensor>> moments;
    for (const Parameter& p : optimizer->params()) {
      const AdamW::State& s = optimizer->states().at(p.name);
      moments.emplace_back(p.name + ".exp_avg", s.m);
      moments.emplace_back(p.name + ".exp_avg_sq", s.v);
      moments.emplace_back(p.name + ".step", Tensor::from_vector<int64_t>({s.step}, {1}));
    }
    save_safetensors((fs::path(dir) / "optimizer.safetensors").string(), moments, {{"format", "eat-adamw"}});
  }
  write_file_synced((fs::path(dir) / "recipe.toml").string(), recipe.text);
  // A copy rather than a path: the checkpoint stays usable when the data directory moves or is
  // re-tokenized, and an export takes the model along.
  if (!tokenizer_model.empty()) write_file_synced((fs::path(dir) / data::kTokenizerModelFile).string(), tokenizer_model);
  // state.json last: its presence marks the directory complete.
  write_file_synced((fs::path(dir) / "state.json").string(), state.to_json().dump(2) + "\n");
}

namespace {

void load_into(const SafetensorsFile& f, const std::string& name, const Tensor& dst) {
  bool found = false;
  for (const auto& [n, t] : f.tensors) {
    if (n != name) continue;
    found = true;
    EAT_CHECK(t.shape() == dst.shape() && t.dtype() == dst.dtype(), f.path, ": '", name, "' is ", t.describe(),
              " but the model has ", dst.describe(), " (a checkpoint of a different model or config)");
    dst.copy_from(t);
  }
  EAT_CHECK(found, f.path, ": no tensor '", name, "' (a checkpoint of a different model or config)");
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  EAT_CHECK(in, path, ": missing (incomplete checkpoint?)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TrainState checkpoint_state(const std::string& dir) {
  std::string path = (fs::path(dir) / "state.json").string();
  nlohmann::json j = nlohmann::json::parse(read_text(path), nullptr, false);
  EAT_CHECK(!j.is_discarded(), path, ": not valid JSON");
  TrainState s = TrainState::from_json(j, path);
  // A step_XXXXXXXX directory holds that step's state.
  fs::path normal = fs::path(dir).lexically_normal();
  if (!normal.has_filename()) normal = normal.parent_path();  // "step_00000003/"
  const std::string name = normal.filename().string();
  if (name.rfind("step_", 0) == 0)
    EAT_CHECK(name == checkpoint_name(s.step), path, ": says step ", s.step, " inside ", name);
  return s;
}

Recipe checkpoint_recipe(const std::string& dir) {
  std::string path = (fs::path(dir) / "recipe.toml").string();
  const std::string text = read_text(path);
  // state.json keeps the hash of the recipe the checkpoint was saved with: an edited recipe.toml
  // would rebuild another model, or read the weights with another meaning.
  const TrainState state = checkpoint_state(dir);
  EAT_CHECK(text_hash(text) == state.recipe_hash, path, ": edited after the checkpoint was saved (its hash ",
            text_hash(text), " is not state.json's recipe_hash ", state.recipe_hash,
            "); restore it, or train from a recipe file of your own with --resume");
  return parse_recipe(text, path, {}, RenamedKeys::migrate);
}

TrainState load_checkpoint_files(const std::string& dir, LanguageModel& model, AdamW* optimizer) {
  EAT_CHECK(fs::is_directory(dir), "checkpoint ", dir, ": no such directory");
  TrainState state = checkpoint_state(dir);
  SafetensorsFile weights = load_safetensors((fs::path(dir) / "model.safetensors").string());
  std::set<std::string> expected;
  for (const Parameter& p : model.parameters()) {
    load_into(weights, p.name, p.tensor);
    expected.insert(p.name);
  }
  for (const auto& [n, t] : weights.tensors)
    EAT_CHECK(expected.count(n), weights.path, ": holds '", n, "', which this model does not have (a checkpoint of a different model or config)");
  if (optimizer) {
    SafetensorsFile moments = load_safetensors((fs::path(dir) / "optimizer.safetensors").string());
    EAT_CHECK(moments.tensors.size() == 3 * optimizer->params().size(), moments.path, ": holds ", moments.tensors.size(),
              " tensors, expected ", 3 * optimizer->params().size(), " for this model's parameters");
    for (const Parameter& p : optimizer->params()) {
      AdamW::State& s = optimizer->state(p.name);
      load_into(moments, p.name + ".exp_avg", s.m);
      load_into(moments, p.name + ".exp_avg_sq", s.v);
      const Tensor& st = moments.at(p.name + ".step");
      EAT_CHECK(st.dtype() == DType::i64 && st.numel() == 1, moments.path, ": '", p.name, ".step' must be one i64");
      s.step = st.data<int64_t>()[0];
    }
  }
  return state;
}

bool finite_values(const Tensor& t) {
  NoGradGuard no_grad;
  return std::isfinite(sum(t).item());
}

std::unique_ptr<data::Tokenizer> checkpoint_tokenizer(const std::string& dir, const TrainState& state) {
  if (state.tokenizer.empty()) return std::make_unique<data::ByteTokenizer>();
  std::unique_ptr<data::Tokenizer> tokenizer = data::open_tokenizer(state.tokenizer, dir);
  const std::string hash = text_hash(tokenizer->model_bytes());
  EAT_CHECK(hash == state.tokenizer_hash, (fs::path(dir) / data::kTokenizerModelFile).string(),
            ": not the tokenizer model the checkpoint was trained with (its hash ", hash,
            " is not state.json's tokenizer_hash ", state.tokenizer_hash, ")");
  return tokenizer;
}

}  // namespace eat
