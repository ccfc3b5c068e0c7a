#pragma once
// A checkpoint of the run at its current step (model, optimizer, state, recipe; atomic, keeping
// checkpoint.keep_last) and its loss curve RUN_DIR/loss.svg, both written by the leader.
#include "framework/train/training_run.h"

namespace eat {

// Every rank waits until the checkpoint is written.
void checkpoint_run(TrainingRun& run);

// RUN_DIR/loss.svg from the metrics so far (the leader).
void write_run_loss_curve(const TrainingRun& run);

}  // namespace eat
