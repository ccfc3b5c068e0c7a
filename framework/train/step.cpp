#include "framework/train/step.h"

#include "framework/train/run_checkpoint.h"

#include <chrono>
#include <cmath>

#include "base/error.h"
#include "framework/comm/comm_stats.h"
#include "framework/ops.h"

namespace eat {

namespace {

constexpr int32_t kIgnoredTarget = -100;  // cross_entropy's ignore_index

// Every rank holds a full replica: data-parallel ranks saw other samples, sequence-parallel ranks
// other positions; the sum over all of them is the global gradient. A parameter no path reached on
// this rank still joins the collective, with zeros.
void all_reduce_gradients(TrainingRun& run) {
  CommLabel scope("grads.all_reduce");
  for (const Parameter& p : run.params) {
    if (!p.tensor.grad().defined()) p.tensor.set_grad(Tensor::zeros_like(p.tensor));
    run.world.all_reduce_sum(p.tensor.grad());
  }
}

// The loss sum first, then each aux term's; one collective for all.
std::vector<double> all_reduce_sums(TrainingRun& run, std::vector<double> sums) {
  Tensor total = Tensor::from_vector<double>(sums, {static_cast<int64_t>(sums.size())});
  CommLabel scope("loss.all_reduce");
  run.world.all_reduce_sum(total);
  return total.to_f64_vector();
}


}  // namespace

// Rows of consecutive samples from the stream: positions [local_t0, local_t0 + local_len) of each
// sequence (a sequence-parallel rank's share; the whole sequence when sp = 1). Targets come from
// the unsplit sequence, so a share's last target is the next share's first token.
MicroBatch read_micro_batch(const TrainingRun& run, int64_t m) {
  const BatchLayout& l = run.layout;
  const int64_t first = run.state.samples_consumed + l.dp_rank * l.local_batch + m * l.micro;
  const int64_t rows = l.micro, T = l.seq_len, L = l.local_len;
  std::vector<int32_t> buf(static_cast<size_t>(rows * (T + 1)));
  run.stream->read(first, rows, buf.data());
  MicroBatch b{Tensor::empty({rows, L}, DType::i32), Tensor::empty({rows, L}, DType::i32)};
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* s = buf.data() + r * (T + 1) + l.local_t0;
    std::copy(s, s + L, b.ids.data<int32_t>() + r * L);
    std::copy(s + 1, s + L + 1, b.targets.data<int32_t>() + r * L);
  }
  b.scored = rows * L;
  if (run.stream->mask()) {
    std::vector<uint8_t> mask(buf.size());
    run.stream->read_mask(first, rows, mask.data());
    int32_t* targets = b.targets.data<int32_t>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < L; ++i)
        if (!mask[static_cast<size_t>(r * (T + 1) + l.local_t0 + 1 + i)]) {
          targets[r * L + i] = kIgnoredTarget;
          --b.scored;
        }
  }
  return b;
}

MicroBatchSums backward_micro_batches(TrainingRun& run) {
  const BatchLayout& l = run.layout;
  const int64_t rows = l.micro * l.local_len;
  const bool masked = run.stream->mask() != nullptr;
  const int64_t global_scored =
      masked ? run.stream->scored_targets(run.state.samples_consumed, run.recipe.train.global_batch) : 0;
  EAT_CHECK(!masked || global_scored > 0, "step ", run.state.step + 1, ": ", run.stream->mask()->path(),
            " scores no target in the step's ", run.recipe.train.global_batch, " samples; nothing to train on");
  MicroBatchSums sums;
  for (int64_t m = 0; m < l.n_micro; ++m) {
    MicroBatch b = read_micro_batch(run, m);
    ModelOutput out = run.model->forward(b.ids);
    sums.aux.add(out.aux);  // checks the terms before anything else uses them
    // The loss is computed in f32 even when the model computes in bf16.
    Tensor logits = in_loss_type(out.logits);
    Tensor loss = cross_entropy(reshape(logits, {rows, logits.size(-1)}), reshape(b.targets, {rows}), kIgnoredTarget);
    // Masked: this micro-batch's share of the scored targets, in units of 1/shares (see step.h).
    if (masked) loss = scale(loss, static_cast<double>(b.scored * l.shares()) / static_cast<double>(global_scored));
    scale(add_aux_terms(loss, out.aux), 1.0 / static_cast<double>(l.shares())).backward();
    sums.loss.add(loss);
  }
  return sums;
}

StepNumbers train_step(TrainingRun& run) {
  const auto t0 = std::chrono::steady_clock::now();
  reset_comm_counts();  // this step's traffic only
  MicroBatchSums local = backward_micro_batches(run);
  std::vector<double> sums = {local.loss.value()};
  for (double s : local.aux.values()) sums.push_back(s);
  if (run.world.size() > 1) {
    all_reduce_gradients(run);
    sums = all_reduce_sums(run, sums);
  }
  const double shares = static_cast<double>(run.layout.shares());
  StepNumbers s;
  s.step = run.state.step + 1;
  s.loss = sums[0] / shares;
  s.aux = local.aux.means(std::vector<double>(sums.begin() + 1, sums.end()), shares);
  s.aux_loss = weighted_aux_total(s.aux);
  EAT_CHECK(std::isfinite(s.loss), "step ", s.step, ": training loss is ", s.loss, "; stopping without updating. ",
            last_good_checkpoint(run));
  EAT_CHECK(std::isfinite(s.aux_loss), "step ", s.step, ": aux loss is ", s.aux_loss, "; stopping without updating. ",
            last_good_checkpoint(run));
  s.grad_norm = grad_norm(run.params);
  EAT_CHECK(std::isfinite(s.grad_norm), "step ", s.step, ": gradient norm is ", s.grad_norm, "; stopping. ",
            last_good_checkpoint(run));
  s.lr = run.schedule.lr_at(run.state.step);
  run.optimizer->step(s.lr, clip_factor(s.grad_norm, run.recipe.train.grad_clip));  // clipping folded into the update
  run.optimizer->zero_grad();
  run.state.step += 1;
  run.state.samples_consumed += run.recipe.train.global_batch;
  run.result.losses.push_back(s.loss);
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return s;
}

}  // namespace eat
