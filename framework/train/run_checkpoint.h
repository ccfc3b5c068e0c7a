#pragma once
// A checkpoint of the run at its current step (model, optimizer, state, recipe; atomic, keeping
// checkpoint.keep_last) and its loss curve RUN_DIR/loss.svg, both written by the leader.
#include "framework/train/training_run.h"

namespace eat {

// Every rank waits until the checkpoint is written. Weights or moments that hold an inf or a nan
// stop the run instead (an error naming the step, the tensor and the last good checkpoint).
void checkpoint_run(TrainingRun& run);

// "The last good checkpoint is DIR" (or that none was written yet), for the errors that stop a run.
std::string last_good_checkpoint(const TrainingRun& run);

// RUN_DIR/loss.svg from the metrics so far (the leader).
void write_run_loss_curve(const TrainingRun& run);

}  // namespace eat
