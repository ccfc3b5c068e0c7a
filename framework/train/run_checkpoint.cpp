#include "framework/train/run_checkpoint.h"

#include <filesystem>

#include "framework/io/checkpoint_dir.h"

namespace eat {

void checkpoint_run(TrainingRun& run) {
  run.state.num_parameters = run.model->num_parameters();
  if (run.leader) {
    run.result.last_checkpoint = write_checkpoint(run.result.run_dir, run.state.step, run.recipe.checkpoint.keep_last,
                                                  [&](const std::string& dir) {
                                                    save_checkpoint_files(dir, run.recipe, *run.model, run.optimizer.get(),
                                                                          run.state);
                                                  });
    write_run_loss_curve(run);
  }
  run.world.barrier();  // nobody runs ahead of (or exits before) a checkpoint that is still being written
}

void write_run_loss_curve(const TrainingRun& run) {
  if (!run.leader) return;
  write_loss_curve(run.metrics->lines(), run.recipe.run.name + " (" + run.recipe.model.family + ")",
                   (std::filesystem::path(run.result.run_dir) / "loss.svg").string());
}

}  // namespace eat
