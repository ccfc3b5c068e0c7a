// Aux loss terms through the trainer's stages: a model's weighted aux terms join the
// cross-entropy in the step's objective and its gradient, metrics.jsonl, the console lines and the
// evaluation report them, and a model without aux terms trains on the cross-entropy alone.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>

#include "framework/autograd.h"
#include "framework/ops.h"
#include "framework/train/step.h"
#include "framework/train/step_log.h"
#include "framework/train/training_run.h"
#include "squared_logits_model.h"

using namespace eat;

namespace {

constexpr double kAuxWeight = 2.5;

// The next step's terms by hand, each a mean over the micro-batches: cross-entropy and mean(logits^2).
struct ByHand {
  double cross_entropy = 0, aux = 0;
};
ByHand by_hand(const TrainingRun& run) {
  NoGradGuard no_grad;
  ByHand h;
  for (int64_t m = 0; m < run.layout.n_micro; ++m) {
    MicroBatch b = read_micro_batch(run, m);
    Tensor logits = run.model->forward(b.ids).logits;
    const int64_t rows = b.targets.numel();
    h.cross_entropy += cross_entropy(reshape(logits, {rows, logits.size(-1)}), reshape(b.targets, {rows})).item();
    double sq = 0;
    for (double v : logits.to_f64_vector()) sq += v * v;
    h.aux += sq / static_cast<double>(logits.numel());
  }
  h.cross_entropy /= static_cast<double>(run.layout.n_micro);
  h.aux /= static_cast<double>(run.layout.n_micro);
  return h;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// What fn prints on stdout.
std::string captured_stdout(const std::string& path, const std::function<void()>& fn) {
  std::fflush(stdout);
  const int saved = dup(1);
  FILE* file = std::fopen(path.c_str(), "w");
  REQUIRE(file);
  dup2(fileno(file), 1);
  fn();
  std::fflush(stdout);
  dup2(saved, 1);
  close(saved);
  std::fclose(file);
  return read_text(path);
}

std::vector<nlohmann::json> metrics_lines(const std::string& run_dir) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string l; std::getline(in, l);) lines.push_back(nlohmann::json::parse(l));
  return lines;
}

}  // namespace

TEST_CASE("aux loss: the step trains on cross-entropy + weight * aux, and its gradient reaches the parameters") {
  test::SquaredLogitsRuns fx;
  auto run = fx.run(kAuxWeight);  // 2 micro-batches of 2 sequences
  REQUIRE(run->layout.n_micro == 2);
  const ByHand expected = by_hand(*run);
  const double shares = static_cast<double>(run->layout.shares());

  MicroBatchSums sums = backward_micro_batches(*run);
  const double loss = sums.loss.value() / shares;
  const std::vector<AuxValue> aux = sums.aux.means(sums.aux.values(), shares);
  REQUIRE(aux.size() == 1);
  CHECK(aux[0].name == "logit_sq");
  CHECK(aux[0].weight == kAuxWeight);
  CHECK(std::abs(loss - expected.cross_entropy) <= 1e-12 * expected.cross_entropy);
  CHECK(std::abs(aux[0].value - expected.aux) <= 1e-12 * expected.aux);
  const double total = loss + weighted_aux_total(aux);
  CHECK(std::abs(total - (expected.cross_entropy + kAuxWeight * expected.aux)) <= 1e-12 * total);

  // The accumulated gradient against central differences of the objective by hand, on every 5th
  // entry of every parameter; the aux term's share of it must be far above the tolerance.
  const double eps = 1e-5, rtol = 1e-6, atol = 1e-8;  // the objective's rounding is ~1e-15 of ~5
  double aux_share = 0, largest = 0;
  for (const Parameter& p : run->params) {
    REQUIRE(p.tensor.grad().defined());
    const std::vector<double> analytic = p.tensor.grad().to_f64_vector();
    double* x = p.tensor.data<double>();
    for (int64_t i = 0; i < p.tensor.numel(); i += 5) {
      const double orig = x[i];
      x[i] = orig + eps;
      const ByHand plus = by_hand(*run);
      x[i] = orig - eps;
      const ByHand minus = by_hand(*run);
      x[i] = orig;
      const double numeric =
          (plus.cross_entropy + kAuxWeight * plus.aux - minus.cross_entropy - kAuxWeight * minus.aux) / (2 * eps);
      const double numeric_aux = kAuxWeight * (plus.aux - minus.aux) / (2 * eps);
      INFO(p.name << "[" << i << "]");
      CHECK(std::abs(analytic[static_cast<size_t>(i)] - numeric) <= atol + rtol * std::abs(numeric));
      aux_share = std::max(aux_share, std::abs(numeric_aux));
      largest = std::max(largest, std::abs(numeric));
    }
  }
  CHECK(aux_share > 1e4 * atol);
  CHECK(aux_share > 0.01 * largest);
}

TEST_CASE("aux loss: a model without aux terms trains on the cross-entropy alone") {
  test::SquaredLogitsRuns fx;
  auto run = fx.run(std::nullopt);
  // The step's loss is the micro-batch cross-entropies summed in order over the shares, bit for bit.
  double by_hand_sum = 0;
  {
    NoGradGuard no_grad;
    for (int64_t m = 0; m < run->layout.n_micro; ++m) {
      MicroBatch b = read_micro_batch(*run, m);
      Tensor logits = run->model->forward(b.ids).logits;
      const int64_t rows = b.targets.numel();
      by_hand_sum += cross_entropy(reshape(logits, {rows, logits.size(-1)}), reshape(b.targets, {rows})).item();
    }
  }
  const StepNumbers step = train_step(*run);
  CHECK(step.loss == by_hand_sum / static_cast<double>(run->layout.shares()));
  CHECK(step.aux.empty());
  CHECK(step.aux_loss == 0);
  const nlohmann::json line = step_metrics_line(*run, step);
  for (const auto& [key, value] : line.items()) CHECK(key.find("aux") == std::string::npos);
}

TEST_CASE("aux loss: metrics.jsonl, the console lines and validation report the terms") {
  test::SquaredLogitsRuns fx;
  TrainOptions loud = test::quiet();
  loud.quiet = false;
  auto run = fx.run(kAuxWeight, {"train.steps=4", "eval.every=2", "checkpoint.every=0", "log.every=1"}, loud);
  const std::string console = captured_stdout(fx.dir / "stdout.txt", [&] { train(*run); });

  int steps = 0, validations = 0;
  for (const nlohmann::json& l : metrics_lines(run->result.run_dir)) {
    if (l.contains("loss")) {
      ++steps;
      REQUIRE(l.contains("aux_logit_sq"));
      CHECK(l["aux_loss"].get<double>() == kAuxWeight * l["aux_logit_sq"].get<double>());
      CHECK(l["aux_logit_sq"].get<double>() > 0);
    }
    if (l.contains("val_loss")) {
      ++validations;
      REQUIRE(l.contains("val_aux_logit_sq"));
      CHECK(l["val_aux_loss"].get<double>() == kAuxWeight * l["val_aux_logit_sq"].get<double>());
    }
  }
  CHECK(steps == 4);
  CHECK(validations == 2);
  CHECK(console.find("step 1/4 | loss ") != std::string::npos);
  CHECK(console.find(" | aux ") != std::string::npos);
  // Every step line and validation line shows the weighted total after the loss.
  std::istringstream lines(console);
  int with_aux = 0;
  for (std::string l; std::getline(lines, l);)
    if (l.rfind("step ", 0) == 0) {
      CHECK(l.find(" | aux ") != std::string::npos);
      ++with_aux;
    }
  CHECK(with_aux == 6);

  // Without aux terms the lines are as they were.
  auto plain = fx.run(std::nullopt, {"run.name=plain", "train.steps=2", "schedule.warmup=1", "eval.every=0", "checkpoint.every=0", "log.every=1"},
                      loud);
  const std::string plain_console = captured_stdout(fx.dir / "plain.txt", [&] { train(*plain); });
  CHECK(plain_console.find("step 2/2 | loss ") != std::string::npos);
  CHECK(plain_console.find(" | aux ") == std::string::npos);
}

TEST_CASE("aux loss: evaluation reports each term's mean over the windows") {
  test::SquaredLogitsRuns fx;
  auto run = fx.run(kAuxWeight);
  data::TokenFile val(run->recipe.data.val);
  // Three windows of 32 in batches of 2: forwards of 2 windows and of 1.
  EvalResult ev = evaluate(*run->model, val, {32, 32, 96, 2});
  REQUIRE(ev.windows == 3);
  REQUIRE(ev.aux.size() == 1);
  std::vector<int32_t> ids(96);
  val.read(0, 96, ids.data());
  double sum = 0;
  for (int w = 0; w < 3; ++w) {
    double sq = 0;
    Tensor in = Tensor::from_vector<int32_t>(std::vector<int32_t>(ids.begin() + w * 32, ids.begin() + (w + 1) * 32), {1, 32});
    NoGradGuard no_grad;
    for (double v : run->model->forward(in).logits.to_f64_vector()) sq += v * v;
    sum += sq / (32.0 * static_cast<double>(run->recipe.model.vocab_size));
  }
  CHECK(ev.aux[0].name == "logit_sq");
  CHECK(std::abs(ev.aux[0].value - sum / 3) <= 1e-12 * ev.aux[0].value);
}

TEST_CASE("aux loss: terms with names that cannot be metrics keys are refused") {
  AuxSums sums;
  Tensor one = Tensor::full({1}, 1.0, DType::f64);
  CHECK_THROWS_WITH_AS(sums.add({{"loss", one, 1.0}}), doctest::Contains("aux term 'loss'"), Error);
  CHECK_THROWS_WITH_AS(AuxSums().add({{"Load Balance", one, 1.0}}), doctest::Contains("lower-case letters"), Error);
  CHECK_THROWS_WITH_AS(AuxSums().add({{"lb", one, 1.0}, {"lb", one, 1.0}}), doctest::Contains("'lb' is returned twice"), Error);
  CHECK_THROWS_WITH_AS(AuxSums().add({{"lb", Tensor::full({2}, 1.0, DType::f64), 1.0}}), doctest::Contains("one element"), Error);
  AuxSums fixed;
  fixed.add({{"lb", one, 1.0}});
  CHECK_THROWS_WITH_AS(fixed.add({{"z", one, 1.0}}), doctest::Contains("aux term 'z' where an earlier forward had 'lb'"), Error);
}
