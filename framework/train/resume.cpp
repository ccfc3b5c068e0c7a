#include "framework/train/resume.h"

#include <cstdio>
#include <filesystem>

#include "base/error.h"
#include "framework/io/checkpoint_dir.h"

namespace eat {

namespace fs = std::filesystem;

namespace {

std::string resolve_resume(const std::string& mode, const std::string& run_dir) {
  if (mode == "never") return "";
  if (mode == "auto") {
    auto all = list_checkpoints(run_dir);
    return all.empty() ? "" : all.back().path;
  }
  EAT_CHECK(fs::is_directory(mode), "--resume ", mode, ": no such checkpoint directory (use auto, never or a path)");
  return mode;
}

}  // namespace

void resume_run(TrainingRun& run) {
  const Recipe& recipe = run.recipe;
  TrainState& state = run.state;
  state.world_size = run.world.size();
  state.sp = recipe.parallel.sp;
  state.recipe_hash = recipe_hash(recipe);
  state.family = recipe.model.family;
  state.num_parameters = run.model->num_parameters();
  if (run.tokenizer) {
    state.tokenizer = run.tokenizer->name();
    state.tokenizer_hash = text_hash(run.tokenizer->model_bytes());
  }
  run.resume_dir = resolve_resume(run.options.resume, run.result.run_dir);
  if (!run.resume_dir.empty()) {
    const std::string& dir = run.resume_dir;
    // Ids of another tokenizer than the weights learned would be noise to them (said before the
    // shapes, which a new vocabulary changes too).
    const std::string saved_tokenizer = checkpoint_state(dir).tokenizer_hash;
    EAT_CHECK(saved_tokenizer == state.tokenizer_hash, dir, ": trained on data of another tokenizer (tokenizer_hash '",
              saved_tokenizer, "') than ", recipe.data.train, "'s ('", state.tokenizer_hash, "'; '' is bytes)");
    TrainState saved = load_checkpoint_files(dir, *run.model, run.optimizer.get());
    EAT_CHECK(saved.family == recipe.model.family, dir, ": checkpoint of family '", saved.family,
              "', the recipe trains '", recipe.model.family, "'");
    EAT_CHECK(saved.step <= recipe.train.steps, dir, ": checkpoint is at step ", saved.step,
              ", past train.steps = ", recipe.train.steps);
    if (run.say && saved.recipe_hash != state.recipe_hash)
      std::printf("note: the recipe differs from the one the checkpoint was trained with (hash %s vs %s)\n",
                  state.recipe_hash.c_str(), saved.recipe_hash.c_str());
    state.step = saved.step;
    state.samples_consumed = saved.samples_consumed;
    run.result.last_checkpoint = dir;
  }
  run.result.start_step = state.step;
  if (run.leader)
    run.metrics = std::make_unique<MetricsLog>((fs::path(run.result.run_dir) / "metrics.jsonl").string(), state.step);
}

}  // namespace eat
