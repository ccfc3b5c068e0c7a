#pragma once
// The training loop: data stream -> model -> fused cross-entropy plus the model's aux terms ->
// backward (with gradient accumulation over micro-batches) -> global-norm clipping -> AdamW at the
// scheduled learning rate; periodic validation, metrics, loss curve and atomic checkpoints; exact
// resume. Its stages are listed in framework/train/training_run.h.
#include <cstdint>
#include <string>
#include <vector>

#include "framework/config/recipe.h"

namespace eat {

class Communicator;
struct TrainingRun;

struct TrainOptions {
  std::string resume = "auto";  // auto | never | a checkpoint directory
  bool quiet = false;           // no console lines (tests)
  Communicator* world = nullptr;  // the job's ranks; null: this process alone
  bool profile = false;         // time every op from step 2 on and print the table at the end
};

struct TrainResult {
  std::string run_dir;
  int64_t start_step = 0;     // 0, or the step resumed from
  int64_t final_step = 0;
  std::vector<double> losses;  // training loss of each step this process ran
  double last_val_loss = 0;    // NaN when there is no validation split
  std::string last_checkpoint;
  bool interrupted = false;    // stopped by SIGINT/SIGTERM after checkpointing
};

TrainResult train(const Recipe& recipe, const TrainOptions& options);
// The loop over the stages of a run already set up (framework/train/training_run.h): resume, then
// step, log, validate, checkpoint and the stop vote until train.steps.
TrainResult train(TrainingRun& run);

// The run directory of a recipe: run.out_dir / run.name.
std::string run_directory(const Recipe& recipe);

}  // namespace eat
