// evaluate() on masked data: whole examples, only the scored targets, and the argmax accuracy.
#include <cmath>
#include <vector>

#include "base/error.h"
#include "framework/autograd.h"
#include "framework/ops.h"
#include "framework/train/evaluate.h"

namespace eat {

namespace {

constexpr int64_t kIgnoredTarget = -100;  // cross_entropy's ignore_index

// The index of row's largest logit (the first of equals). On a device only that row comes back.
int64_t row_argmax(const Tensor& logits2d, int64_t row) {
  const std::vector<double> v = slice_outer(logits2d, row, row + 1).to(Device::cpu).to_f64_vector();
  int64_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[static_cast<size_t>(best)]) best = static_cast<int64_t>(i);
  return best;
}

}  // namespace

EvalResult evaluate_examples(LanguageModel& model, const data::TokenFile& file, const data::MaskFile& mask,
                             const EvalOptions& opt) {
  const int64_t R = mask.record_len(), L = R - 1;
  EAT_CHECK(opt.window == L, "eval: ", mask.path(), " holds examples of ", R, " ids, scored with a window of ", L,
            " (--seq-len ", L, "), not ", opt.window);
  EAT_CHECK(opt.batch > 0, "eval: batch must be positive");
  int64_t examples = file.size() / R;
  if (opt.max_tokens > 0) examples = std::min(examples, std::max<int64_t>(1, opt.max_tokens / L));
  EAT_CHECK(examples > 0, "eval: ", file.path(), " holds no example");

  NoGradGuard no_grad;
  EvalResult r;
  AuxSums aux;
  double total = 0;
  int64_t scored = 0, correct = 0;
  std::vector<double> batch_losses, batch_scores;  // per forward, for the error bar
  for (int64_t e0 = 0; e0 < examples; e0 += opt.batch) {
    const int64_t B = std::min(opt.batch, examples - e0);
    Tensor ids = Tensor::empty({B, L}, DType::i32);
    std::vector<int64_t> targets(static_cast<size_t>(B * L));
    std::vector<int32_t> buf(static_cast<size_t>(R));
    int64_t batch_scored = 0;
    for (int64_t b = 0; b < B; ++b) {
      file.read((e0 + b) * R, R, buf.data());
      std::copy(buf.begin(), buf.end() - 1, ids.data<int32_t>() + b * L);
      for (int64_t i = 0; i < L; ++i) {
        const bool counted = mask.scored((e0 + b) * R + i + 1);
        targets[static_cast<size_t>(b * L + i)] = counted ? buf[static_cast<size_t>(i + 1)] : kIgnoredTarget;
        batch_scored += counted;
      }
    }
    ModelOutput out = model.forward(ids);
    aux.add(out.aux, static_cast<double>(B));
    if (batch_scored == 0) continue;
    Tensor logits = in_loss_type(out.logits);
    const int64_t V = logits.size(-1);
    for (int64_t t : targets)
      EAT_CHECK(t == kIgnoredTarget || (t >= 0 && t < V), "eval: token id ", t, " in ", file.path(),
                " is outside the model's vocabulary ", V);
    Tensor rows = reshape(logits, {B * L, V});
    const double batch_loss = cross_entropy(rows, Tensor::from_vector<int64_t>(targets, {B * L})).item() *
                              static_cast<double>(batch_scored);
    for (int64_t i = 0; i < B * L; ++i)
      if (targets[static_cast<size_t>(i)] != kIgnoredTarget) correct += row_argmax(rows, i) == targets[static_cast<size_t>(i)];
    total += batch_loss;
    scored += batch_scored;
    batch_losses.push_back(batch_loss);
    batch_scores.push_back(static_cast<double>(batch_scored));
  }
  EAT_CHECK(scored > 0, "eval: ", mask.path(), " scores no target in the ", examples, " examples evaluated");
  r.windows = examples;
  r.aux = aux.means(aux.values(), static_cast<double>(examples));
  r.tokens = scored;
  r.loss = total / static_cast<double>(scored);
  r.ppl = std::exp(r.loss);
  r.bpb = r.loss / std::log(2.0);  // synthetic ids encode no text: bits per scored token
  r.accuracy = static_cast<double>(correct) / static_cast<double>(scored);
  if (batch_losses.size() > 1) {
    double var = 0;
    for (size_t i = 0; i < batch_losses.size(); ++i) {
      const double d = batch_losses[i] / batch_scores[i] - r.loss;
      var += d * d;
    }
    var /= static_cast<double>(batch_losses.size() - 1);
    r.ppl_stderr = r.ppl * std::sqrt(var / static_cast<double>(batch_losses.size()));
  }
  return r;
}

}  // namespace eat
