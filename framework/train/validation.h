#pragma once
// Validation: the held-out loss of the run's model at its current step, over eval.max_tokens of
// data.val in windows of data.seq_len (the settings of `eat eval`, so the two agree). Every rank
// holds the same replica; the leader evaluates whole windows on its own, records val_loss, val_ppl,
// val_bpb, val_tokens (and val_aux_<name>, val_aux_loss) and prints the line.
#include "framework/train/training_run.h"

namespace eat {

// The validation loss; NaN on the other ranks and without data.val.
double validate(TrainingRun& run);

}  // namespace eat
