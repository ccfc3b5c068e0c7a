// The loss mask through the trainer and the evaluation: only scored targets count, the step's
// loss is the mean over every scored target of the global batch however they fall on the
// micro-batches, and the evaluation's answer accuracy.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>

#include "base/error.h"
#include "data/mask_file.h"
#include "data/token_file.h"
#include "framework/autograd.h"
#include "framework/ops.h"
#include "framework/train/step.h"
#include "framework/train/training_run.h"
#include "squared_logits_model.h"

using namespace eat;

namespace {

constexpr int64_t kSeqLen = 32, kRecord = kSeqLen + 1, kVocab = 257, kExamples = 24;

// Masked examples of 33 ids: example e scores 1 + 3 (e % 5) targets at random places among
// 1..31, so micro-batches score different numbers; the last id of every example is never scored
// (and only ever a target, never an input). `scores` overrides which example positions are scored.
struct MaskedData {
  std::vector<int32_t> ids;
  std::vector<uint8_t> scored;
  explicit MaskedData(uint64_t seed) : ids(kExamples * kRecord), scored(kExamples * kRecord, 0) {
    Generator gen(seed);
    for (int32_t& id : ids) id = static_cast<int32_t>(gen.next_u64() % kVocab);
    for (int64_t e = 0; e < kExamples; ++e)
      for (int64_t k = 0; k < 1 + 3 * (e % 5); ++k) scored[e * kRecord + 1 + gen.next_u64() % (kSeqLen - 1)] = 1;
  }
  void write(const std::string& token_path) const {
    data::write_token_file(token_path, ids, kVocab, "byte", 0);
    data::write_mask_file(data::mask_path_for(token_path), scored, kRecord);
  }
};

// tiny_run.h's recipe (4 sequences of 32 a step, micro-batches of 2) over masked data, training
// SquaredLogitsModel in f64.
struct MaskedRuns {
  test::TempDir dir{"masked"};
  std::unique_ptr<TrainingRun> run(const MaskedData& data, std::vector<std::string> sets = {}) const {
    std::filesystem::create_directories(dir / "data");
    data.write(dir / "data/train.tok");
    data.write(dir / "data/val.tok");
    sets.push_back("train.precision=f64");
    Recipe r = parse_recipe(test::recipe_text(dir.str()), "test.toml", sets);
    return std::make_unique<TrainingRun>(r, test::quiet(), std::make_unique<test::SquaredLogitsModel>(kVocab, std::nullopt));
  }
};

// -log softmax(logits row)[target] in double.
double row_nll(const std::vector<double>& logits, int64_t row, int64_t target) {
  const double* z = logits.data() + row * kVocab;
  double m = z[0], s = 0;
  for (int64_t v = 1; v < kVocab; ++v) m = std::max(m, z[v]);
  for (int64_t v = 0; v < kVocab; ++v) s += std::exp(z[v] - m);
  return m + std::log(s) - z[target];
}

// The next step's loss by hand: the mean over the global batch's scored targets, and (to show the
// difference matters) the mean of the micro-batches' own means.
struct ByHand {
  double loss = 0, mean_of_means = 0;
};
ByHand by_hand(const TrainingRun& run) {
  NoGradGuard no_grad;
  double total = 0, means = 0;
  int64_t scored = 0;
  for (int64_t m = 0; m < run.layout.n_micro; ++m) {
    MicroBatch b = read_micro_batch(run, m);
    const std::vector<double> logits = run.model->forward(b.ids).logits.to_f64_vector();
    const int32_t* t = b.targets.data<int32_t>();
    double sum = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < b.targets.numel(); ++i)
      if (t[i] != -100) {
        sum += row_nll(logits, i, t[i]);
        ++count;
      }
    CHECK(count == b.scored);
    total += sum;
    scored += count;
    means += sum / static_cast<double>(count);
  }
  return {total / static_cast<double>(scored), means / static_cast<double>(run.layout.n_micro)};
}

std::vector<std::vector<double>> gradients(const TrainingRun& run) {
  std::vector<std::vector<double>> g;
  for (const Parameter& p : run.params) g.push_back(p.tensor.grad().to_f64_vector());
  return g;
}

}  // namespace

TEST_CASE("masked loss: the step's loss and gradient are those of the mean over the global batch's scored targets") {
  MaskedRuns fx;
  auto run = fx.run(MaskedData(1));
  REQUIRE(run->layout.n_micro == 2);
  const ByHand expected = by_hand(*run);
  REQUIRE(std::abs(expected.mean_of_means - expected.loss) > 1e-3);  // unequal micro-batches: the weighting matters
  MicroBatchSums sums = backward_micro_batches(*run);
  const double loss = sums.loss.value() / static_cast<double>(run->layout.shares());
  CHECK(std::abs(loss - expected.loss) <= 1e-12 * expected.loss);

  // The accumulated gradient against central differences of the loss by hand, every 7th entry.
  const double eps = 1e-5, rtol = 1e-6, atol = 1e-9;  // f64: the loss's rounding is ~1e-15 of ~6
  for (const Parameter& p : run->params) {
    const std::vector<double> analytic = p.tensor.grad().to_f64_vector();
    double* x = p.tensor.data<double>();
    for (int64_t i = 0; i < p.tensor.numel(); i += 7) {
      const double orig = x[i];
      x[i] = orig + eps;
      const double plus = by_hand(*run).loss;
      x[i] = orig - eps;
      const double minus = by_hand(*run).loss;
      x[i] = orig;
      const double numeric = (plus - minus) / (2 * eps);
      INFO(p.name << "[" << i << "]");
      CHECK(std::abs(analytic[static_cast<size_t>(i)] - numeric) <= atol + rtol * std::abs(numeric));
    }
  }
}

TEST_CASE("masked loss: an unscored target changes neither the loss nor any gradient") {
  MaskedRuns fx;
  const MaskedData base(2);
  MaskedData changed = base;  // every example's last id (a target only, unscored) replaced
  for (int64_t e = 0; e < kExamples; ++e) changed.ids[e * kRecord + kSeqLen] = (base.ids[e * kRecord + kSeqLen] + 100) % kVocab;
  auto step = [&](const MaskedData& d) {
    auto run = fx.run(d);
    const double loss = backward_micro_batches(*run).loss.value();
    return std::make_pair(loss, gradients(*run));
  };
  const auto [loss_a, grads_a] = step(base);
  const auto [loss_b, grads_b] = step(changed);
  CHECK(loss_a == loss_b);  // bit for bit
  CHECK(grads_a == grads_b);

  // The same change where those targets are scored does change both (the check above can fail).
  MaskedData scored_base = base, scored_changed = changed;
  for (int64_t e = 0; e < kExamples; ++e) scored_base.scored[e * kRecord + kSeqLen] = scored_changed.scored[e * kRecord + kSeqLen] = 1;
  const auto [loss_c, grads_c] = step(scored_base);
  const auto [loss_d, grads_d] = step(scored_changed);
  CHECK(loss_c != loss_d);
  CHECK(grads_c != grads_d);
}

TEST_CASE("masked loss: a global batch without a scored target is an error naming the mask and the step") {
  MaskedRuns fx;
  MaskedData none(3);
  std::fill(none.scored.begin(), none.scored.end(), 0);
  auto run = fx.run(none);
  CHECK_THROWS_WITH_AS(backward_micro_batches(*run),
                       doctest::Contains(("step 1: " + fx.dir / "data/train.mask" + " scores no target in the step's 4 samples").c_str()),
                       Error);
}

TEST_CASE("masked loss: data of examples another length than seq_len + 1 are refused") {
  MaskedRuns fx;
  CHECK_THROWS_WITH_AS(fx.run(MaskedData(4), {"data.seq_len=16"}),
                       doctest::Contains("holds examples of 33 ids, which need data.seq_len = 32; the recipe has seq_len 16"),
                       Error);
}

TEST_CASE("masked eval: loss over the scored targets and the accuracy of their argmax, on a hand-made case") {
  MaskedRuns fx;
  MaskedData d(5);
  auto run = fx.run(d);
  // SquaredLogitsModel's logits at a position depend on that position's id only: its argmax per id.
  std::vector<int32_t> every(kVocab);
  for (int32_t v = 0; v < kVocab; ++v) every[static_cast<size_t>(v)] = v;
  std::vector<double> table;
  {
    NoGradGuard no_grad;
    table = run->model->forward(Tensor::from_vector<int32_t>(every, {1, kVocab})).logits.to_f64_vector();
  }
  auto argmax = [&](int32_t id) {
    const double* z = table.data() + static_cast<int64_t>(id) * kVocab;
    return static_cast<int32_t>(std::max_element(z, z + kVocab) - z);
  };
  // Scored targets 3 of every 4: the model's argmax for its input (correct), the 4th something else.
  std::fill(d.scored.begin(), d.scored.end(), 0);
  int64_t answers = 0, correct = 0;
  double nll = 0;
  for (int64_t e = 0; e < kExamples; ++e)
    for (int64_t i = 2; i <= kSeqLen; i += 3, ++answers) {
      const int64_t at = e * kRecord + i;
      d.scored[static_cast<size_t>(at)] = 1;
      const int32_t best = argmax(d.ids[static_cast<size_t>(at - 1)]);
      d.ids[static_cast<size_t>(at)] = answers % 4 == 3 ? (best + 1) % kVocab : best;
      correct += answers % 4 != 3;
      nll += row_nll(table, d.ids[static_cast<size_t>(at - 1)], d.ids[static_cast<size_t>(at)]);
    }
  d.write(fx.dir / "data/val.tok");
  data::TokenFile val(fx.dir / "data/val.tok");
  auto mask = data::open_mask_beside(val);
  REQUIRE(mask);
  EvalResult ev = evaluate(*run->model, val, {kSeqLen, kSeqLen, 0, 5}, mask.get());  // 24 examples in forwards of 5
  CHECK(ev.windows == kExamples);
  CHECK(ev.tokens == answers);
  CHECK(ev.accuracy == static_cast<double>(correct) / static_cast<double>(answers));
  CHECK(std::abs(ev.loss - nll / static_cast<double>(answers)) <= 1e-12 * ev.loss);
  // max_tokens keeps whole examples: 100 tokens are 3 examples of 32.
  CHECK(evaluate(*run->model, val, {kSeqLen, kSeqLen, 100, 5}, mask.get()).windows == 3);
  CHECK_THROWS_WITH_AS(evaluate(*run->model, val, {16, 16, 0, 5}, mask.get()),
                       doctest::Contains("holds examples of 33 ids, scored with a window of 32"), Error);
}
