// eat info DIR: what a checkpoint (or a run directory's newest checkpoint) holds.
// eat info --families: the registered model families, one a line, and whether each supports
// sequence parallelism ("transformer sp" / "name no-sp"), for scripts that loop over them.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "framework/io/checkpoint_dir.h"
#include "framework/io/safetensors.h"
#include "framework/model.h"
#include "framework/train/checkpoint.h"

namespace eat::cli {

namespace {

// The model's aux terms and statistics (MoH's balance loss and head use, say) as the run logged
// them at the last training step up to the checkpoint's, from RUN_DIR/metrics.jsonl beside the
// checkpoints; nothing when the run logged none or the file is gone.
void print_logged_aux(const std::filesystem::path& checkpoint, int64_t step) {
  std::ifstream in(checkpoint.parent_path().parent_path() / "metrics.jsonl");
  nlohmann::json last;
  for (std::string text; std::getline(in, text);) {
    const nlohmann::json line = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (line.is_object() && line.contains("loss") && line.value("step", int64_t{-1}) <= step) last = line;
  }
  if (!last.is_object()) return;
  bool header = false;
  for (const auto& [key, value] : last.items()) {
    if (key.rfind("aux_", 0) != 0 || !value.is_number()) continue;
    if (!header) std::printf("\n# aux terms and model statistics logged at step %lld\n", last["step"].get<long long>());
    header = true;
    std::printf("%-24s %.6g\n", key.c_str(), value.get<double>());
  }
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("info", "Describe a checkpoint (model, step, parameters, recipe), or list the model families");
  auto dir = std::make_shared<std::string>();
  auto families = std::make_shared<bool>(false);
  auto* dir_opt = cmd->add_option("dir", *dir, "Checkpoint directory, or a run directory (its newest checkpoint)");
  cmd->add_flag("--families", *families, "List the model families and whether each supports sequence parallelism")
      ->excludes(dir_opt);
  cmd->callback([dir, families] {
    if (*families) {
      for (const std::string& name : family_names())
        std::printf("%s %s\n", name.c_str(), find_family(name)->sequence_parallel ? "sp" : "no-sp");
      return;
    }
    if (dir->empty()) throw CLI::RequiredError("dir (or --families)");
    const std::string path = resolve_checkpoint(*dir);
    TrainState s = checkpoint_state(path);
    Recipe r = checkpoint_recipe(path);
    SafetensorsFile w = load_safetensors((std::filesystem::path(path) / "model.safetensors").string());
    std::printf("checkpoint   %s\n", path.c_str());
    std::printf("model        %s, d_model %lld, %lld layers, %lld heads, vocab %lld\n", s.family.c_str(),
                static_cast<long long>(r.model.d_model), static_cast<long long>(r.model.n_layers),
                static_cast<long long>(r.model.n_heads), static_cast<long long>(r.model.vocab_size));
    std::printf("parameters   %lld in %zu tensors\n", static_cast<long long>(s.num_parameters), w.tensors.size());
    std::printf("step         %lld of %lld (%lld samples of %lld tokens consumed)\n", static_cast<long long>(s.step),
                static_cast<long long>(r.train.steps), static_cast<long long>(s.samples_consumed),
                static_cast<long long>(r.data.seq_len));
    std::printf("trained on   world size %d (sp %lld), recipe hash %s\n", s.world_size, static_cast<long long>(s.sp),
                s.recipe_hash.c_str());
    std::printf("tokenizer    %s\n", s.tokenizer.empty() ? "byte"
                                                       : (s.tokenizer + " (tokenizer.model, hash " + s.tokenizer_hash + ")").c_str());
    print_logged_aux(path, s.step);
    std::printf("\n# recipe\n%s\n", r.text.c_str());
  });
}

}  // namespace eat::cli
