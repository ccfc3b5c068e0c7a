#include "framework/train/evaluate.h"

#include <cmath>
#include <vector>

#include "framework/autograd.h"
#include "framework/dispatch.h"
#include "base/error.h"
#include "framework/ops.h"
#include "kernels/cross_entropy.h"

namespace eat {

namespace {

struct Window {
  int64_t start, len, first_scored;  // inputs ids[start, start + len); targets shifted by one
};

}  // namespace

std::vector<PositionBucket> position_buckets(int64_t window) {
  std::vector<PositionBucket> buckets;
  for (int64_t first = 1; first <= window; first *= 2) buckets.push_back({first, std::min(2 * first - 1, window)});
  return buckets;
}

EvalResult evaluate(LanguageModel& model, const data::TokenFile& file, const EvalOptions& opt,
                    const data::MaskFile* mask) {
  if (mask) return evaluate_examples(model, file, *mask, opt);
  EAT_CHECK(opt.window > 0 && opt.stride > 0 && opt.stride <= opt.window, "eval: need 0 < stride <= window, got window ",
            opt.window, " stride ", opt.stride);
  EAT_CHECK(opt.batch > 0, "eval: batch must be positive");
  const int64_t N = file.size();
  EAT_CHECK(N >= 2, "eval: ", file.path(), " holds ", N, " tokens, too few to score anything");

  // Windows: every target index is scored exactly once, by the first window that contains it.
  std::vector<Window> windows;
  int64_t scored_until = 0;  // targets with index < scored_until are done (target index = input index + 1)
  int64_t budget = opt.max_tokens > 0 ? opt.max_tokens : INT64_MAX;
  for (int64_t start = 0; start + 1 < N && scored_until < N - 1 && budget > 0; start += opt.stride) {
    int64_t len = std::min(opt.window, N - 1 - start);
    int64_t first = std::max<int64_t>(0, scored_until - start);
    int64_t count = std::min(len - first, budget);
    if (count <= 0) continue;
    windows.push_back({start, first + count, first});
    scored_until = start + first + count;
    budget -= count;
  }

  NoGradGuard no_grad;
  std::vector<double> window_loss(windows.size()), window_tokens(windows.size());
  AuxSums aux;
  std::vector<PositionBucket> buckets = opt.by_position ? position_buckets(opt.window) : std::vector<PositionBucket>{};
  std::vector<double> bucket_loss(buckets.size());
  for (size_t w0 = 0; w0 < windows.size();) {
    // Batch consecutive windows of equal length.
    size_t w1 = w0 + 1;
    while (w1 < windows.size() && static_cast<int64_t>(w1 - w0) < opt.batch && windows[w1].len == windows[w0].len) ++w1;
    const int64_t B = static_cast<int64_t>(w1 - w0), L = windows[w0].len;
    Tensor ids = Tensor::empty({B, L}, DType::i32);
    std::vector<int32_t> targets(static_cast<size_t>(B * L));
    for (int64_t b = 0; b < B; ++b) {
      std::vector<int32_t> buf(static_cast<size_t>(L + 1));
      file.read(windows[w0 + b].start, L + 1, buf.data());
      std::copy(buf.begin(), buf.end() - 1, ids.data<int32_t>() + b * L);
      std::copy(buf.begin() + 1, buf.end(), targets.begin() + b * L);
    }
    ModelOutput out = model.forward(ids);
    aux.add(out.aux, static_cast<double>(B));
    Tensor logits = in_loss_type(out.logits);
    const int64_t V = logits.size(-1);
    for (int64_t b = 0; b < B; ++b) {
      const Window& w = windows[w0 + b];
      const int64_t rows = L - w.first_scored;
      std::vector<int64_t> scored(static_cast<size_t>(rows));
      for (int64_t i = 0; i < rows; ++i) {
        const int32_t t = targets[static_cast<size_t>(b * L + w.first_scored + i)];
        EAT_CHECK(t >= 0 && t < V, "eval: token id ", t, " in ", file.path(), " is outside the model's vocabulary ", V);
        scored[static_cast<size_t>(i)] = t;
      }
      // The loss summed over the window's scored rows [r0, r1) (row i predicts position i + 1).
      auto rows_loss = [&](int64_t r0, int64_t r1) {
        const int64_t n = r1 - r0;
        const int64_t* row_targets = scored.data() + (r0 - w.first_scored);
        if (logits.device() == Device::cpu) {
          // The training loss's own kernel: per-row log-sum-exp in double, rows summed in order.
          std::vector<double> lse(static_cast<size_t>(n));
          int64_t counted = 0;
          double sum = 0;
          dispatch_floating("eval", logits.dtype(), [&]<typename T>() {
            sum = cpu::cross_entropy_forward<T>(logits.data<T>() + (b * L + r0) * V, row_targets, lse.data(), n, V, -1,
                                                &counted);
          });
          return sum;
        }
        // On the device the logits stay there: the training loss op over the rows (a free view),
        // its mean read back once and scaled to the sum.
        Tensor rows_logits = slice_outer(reshape(logits, {B * L, V}), b * L + r0, b * L + r1);
        std::vector<int64_t> targets_of_rows(row_targets, row_targets + n);
        Tensor mean_loss = cross_entropy(rows_logits, Tensor::from_vector<int64_t>(targets_of_rows, {n}));
        return mean_loss.item() * static_cast<double>(n);
      };
      window_loss[w0 + b] = rows_loss(w.first_scored, L);
      if (opt.by_position)
        for (size_t k = 0; k < buckets.size(); ++k) {
          const int64_t r0 = std::max(buckets[k].first - 1, w.first_scored), r1 = std::min(buckets[k].last, L);
          if (r0 >= r1) continue;
          bucket_loss[k] += rows_loss(r0, r1);
          buckets[k].tokens += r1 - r0;
        }
      window_tokens[w0 + b] = static_cast<double>(L - w.first_scored);
    }
    w0 = w1;
  }

  EvalResult r;
  double total = 0, tokens = 0;
  for (size_t i = 0; i < windows.size(); ++i) {
    total += window_loss[i];
    tokens += window_tokens[i];
  }
  r.windows = static_cast<int64_t>(windows.size());
  r.aux = aux.means(aux.values(), static_cast<double>(windows.size()));
  r.tokens = static_cast<int64_t>(tokens);
  r.loss = total / tokens;
  r.ppl = std::exp(r.loss);
  for (size_t k = 0; k < buckets.size(); ++k)
    if (buckets[k].tokens > 0) buckets[k].loss = bucket_loss[k] / static_cast<double>(buckets[k].tokens);
  r.by_position = std::move(buckets);
  double bytes_per_token = file.info().raw_bytes > 0 ? static_cast<double>(file.info().raw_bytes) / N : 1.0;
  r.bpb = r.loss / std::log(2.0) / bytes_per_token;
  if (windows.size() > 1) {
    double var = 0;
    for (size_t i = 0; i < windows.size(); ++i) {
      double d = window_loss[i] / window_tokens[i] - r.loss;
      var += d * d;
    }
    var /= static_cast<double>(windows.size() - 1);
    r.ppl_stderr = r.ppl * std::sqrt(var / static_cast<double>(windows.size()));
  }
  return r;
}

}  // namespace eat
