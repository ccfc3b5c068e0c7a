#pragma once
// One optimizer step of a run: this rank's micro-batches -> cross-entropy plus the model's
// weighted aux terms -> backward (gradients accumulate over the micro-batches) -> all-reduce of the
// gradients and loss sums over the ranks -> global-norm clipping -> AdamW at the scheduled rate.
#include <cstdint>
#include <vector>

#include "framework/train/loss_terms.h"
#include "framework/train/training_run.h"

namespace eat {

// This rank's micro-batch m of the next step: ids and targets [micro, local_len] (i32). Targets the
// data's mask does not score are the loss's ignore_index (-100).
struct MicroBatch {
  Tensor ids, targets;
  int64_t scored = 0;  // targets not ignored
};
MicroBatch read_micro_batch(const TrainingRun& run, int64_t m);

// This rank's sums over its micro-batches, before the reduction over the ranks.
struct MicroBatchSums {
  ScalarSum loss;  // cross-entropy means
  AuxSums aux;     // aux term values, unweighted
};

// The step's first half on this rank: forward and backward of every micro-batch of the next step.
// Each micro-batch's cross-entropy + sum of weight * aux weighs 1/layout.shares(): summed over the
// micro-batches and all ranks, the gradient is that of the global batch's mean. The gradients
// accumulate in the parameters. With a loss mask the micro-batches score different numbers of
// targets, so a micro-batch's cross-entropy (its mean over its scored targets) weighs
// scored / (the global batch's scored targets) instead: the loss is the mean over every scored
// target of the global batch, however they fall on micro-batches and ranks. Every rank counts the
// global batch's scored targets from the sample stream itself (no collective). A global batch
// without a scored target is an error.
MicroBatchSums backward_micro_batches(TrainingRun& run);

// What a step reports.
struct StepNumbers {
  int64_t step = 0;           // the step just completed, from 1
  double loss = 0;            // cross-entropy, mean over the global batch
  std::vector<AuxValue> aux;  // each aux term's mean over the global batch; empty for most families
  double aux_loss = 0;        // sum of weight * mean: what the aux terms added to the loss
  double lr = 0;
  double grad_norm = 0;       // before clipping
  double seconds = 0;         // wall time of the step
};

// The whole step; advances run.state and appends the loss to run.result. A loss or gradient norm
// that is not finite stops the run with an error naming the step and the last good checkpoint.
StepNumbers train_step(TrainingRun& run);

}  // namespace eat
