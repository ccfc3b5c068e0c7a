#include "framework/train/run_checkpoint.h"

#include <filesystem>
#include <string>
#include <utility>

#include "framework/io/checkpoint_dir.h"

namespace eat {

namespace {

// The first of the weights and AdamW moments that holds an inf or a nan ("" when all are finite).
std::string first_non_finite(const TrainingRun& run) {
  for (const Parameter& p : run.params)
    if (!finite_values(p.tensor)) return "weight " + p.name;
  for (const auto& [name, s] : run.optimizer->states())
    for (const auto& [what, t] : {std::pair{"first", &s.m}, std::pair{"second", &s.v}})
      if (t->defined() && !finite_values(*t)) return std::string(what) + " moment of " + name;
  return "";
}

}  // namespace

void checkpoint_run(TrainingRun& run) {
  // A checkpoint is a state to resume or evaluate: never one whose numbers are already lost.
  const std::string bad = first_non_finite(run);
  EAT_CHECK(bad.empty(), "step ", run.state.step, ": the ", bad, " is not finite (the update diverged); stopping without ",
            "writing a checkpoint. ",
            last_good_checkpoint(run));
  run.state.num_parameters = run.model->num_parameters();
  if (run.leader) {
    run.result.last_checkpoint = write_checkpoint(run.result.run_dir, run.state.step, run.recipe.checkpoint.keep_last,
                                                  [&](const std::string& dir) {
                                                    save_checkpoint_files(dir, run.recipe, *run.model, run.optimizer.get(),
                                                                          run.state,
                                                                          run.tokenizer ? run.tokenizer->model_bytes() : "");
                                                  });
    write_run_loss_curve(run);
  }
  run.world.barrier();  // nobody runs ahead of (or exits before) a checkpoint that is still being written
}

std::string last_good_checkpoint(const TrainingRun& run) {
  return run.result.last_checkpoint.empty() ? std::string("No checkpoint was written yet.")
                                            : "The last good checkpoint is " + run.result.last_checkpoint;
}

void write_run_loss_curve(const TrainingRun& run) {
  if (!run.leader) return;
  write_loss_curve(run.metrics->lines(), run.recipe.run.name + " (" + run.recipe.model.family + ")",
                   (std::filesystem::path(run.result.run_dir) / "loss.svg").string());
}

}  // namespace eat
