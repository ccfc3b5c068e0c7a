// Titans' MLP memory (mlp_memory) beyond its op table rows (framework/op_cases/mlp_memory.cpp):
// the backward's recomputation from kept states, thread-count determinism, shared initial
// weights, absent momenta, a long sequence at the largest inner step, and the input checks.
#include <omp.h>

#include <cmath>

#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

namespace {

struct Inputs {
  Tensor q, k, v, theta, eta, alpha, w1, w2, s1, s2;
  std::vector<Tensor*> all() { return {&q, &k, &v, &theta, &eta, &alpha, &w1, &w2, &s1, &s2}; }
};

// Random inputs in `dtype` with gradients requested; W1 and W2 shared [H, ...] or per sequence;
// q and k of norm about 1 and unit-variance layers, so the inner steps are stable.
Inputs random_inputs(int64_t B, int64_t T, int64_t H, int64_t d, int64_t h, int64_t e, bool shared, Generator& gen,
                     DType dtype = DType::f64) {
  const double sd = 1.0 / std::sqrt(static_cast<double>(d)), sh = 1.0 / std::sqrt(static_cast<double>(h));
  auto r = [&](const Shape& shape, double stddev) { return Tensor::randn(shape, gen, stddev, dtype).requires_grad_(); };
  Inputs in{r({B, T, H, d}, sd), r({B, T, H, d}, sd), r({B, T, H, e}, 1.0), r({B, T, H}, 1.0), r({B, T, H}, 1.5),
            r({B, T, H}, 1.5),   Tensor(),            Tensor(),            r({B, H, d, h}, 0.5 * sd),
            r({B, H, h, e}, 0.5 * sh)};
  in.w1 = shared ? r({H, d, h}, sd) : r({B, H, d, h}, sd);
  in.w2 = shared ? r({H, h, e}, sh) : r({B, H, h, e}, sh);
  return in;
}

NeuralMemoryOptions options(int64_t chunk, int64_t checkpoint_chunks = 0, double max_lr = 0.5) {
  return {.chunk = chunk, .max_lr = max_lr, .checkpoint_chunks = checkpoint_chunks};
}
// Initial weights without momenta.
MlpMemoryState weights(const Tensor& w1, const Tensor& w2) { return {w1, w2, Tensor(), Tensor()}; }

MlpMemoryResult run(const Inputs& in, const NeuralMemoryOptions& options) {
  return mlp_memory(in.q, in.k, in.v, {in.theta, in.eta, in.alpha}, {in.w1, in.w2, in.s1, in.s2}, options);
}

// Every output and every input gradient (y and the four final states seeded with fixed random
// weights), as f64 vectors.
std::vector<std::vector<double>> outputs_and_grads(Inputs in, const NeuralMemoryOptions& options) {
  for (Tensor* t : in.all())
    if (t->defined()) t->zero_grad();
  MlpMemoryResult r = run(in, options);
  Generator seeds(99);
  Tensor loss = sum(mul(r.y, Tensor::randn(r.y.shape(), seeds, 1.0, r.y.dtype())));
  for (const Tensor* s : {&r.state.w1, &r.state.w2, &r.state.s1, &r.state.s2})
    loss = add(loss, sum(mul(*s, Tensor::randn(s->shape(), seeds, 1.0, s->dtype()))));
  loss.backward();
  std::vector<std::vector<double>> out{r.y.to_f64_vector(), r.state.w1.to_f64_vector(), r.state.w2.to_f64_vector(),
                                       r.state.s1.to_f64_vector(), r.state.s2.to_f64_vector()};
  for (Tensor* t : in.all())
    if (t->defined()) out.push_back(t->grad().to_f64_vector());
  return out;
}

}  // namespace

TEST_CASE("mlp_memory: the gradients do not depend on how many states the forward keeps") {
  // 11 chunks of 16 (the last one ragged): kept every chunk, every third, and about sqrt(11) = 3
  // ... apart; the backward recomputes the rest with the forward's own step, so bit-identical.
  Generator gen(3);
  const Inputs in = random_inputs(2, 163, 2, 4, 8, 3, true, gen);
  const auto every = outputs_and_grads(in, options(16, 1));
  CHECK(outputs_and_grads(in, options(16, 3)) == every);
  CHECK(outputs_and_grads(in, options(16, 0)) == every);
  CHECK(outputs_and_grads(in, options(16, 20)) == every);  // one kept state
}

TEST_CASE("mlp_memory: outputs and gradients are bit-identical at 1 and 2 threads") {
  const int threads = omp_get_max_threads();
  Generator gen(4);
  for (DType dtype : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dtype));
    // Per-sequence weights with 3 heads over 2 threads (a head each, one thread twice), and shared
    // weights whose gradient sums the batch.
    for (bool shared : {false, true}) {
      const Inputs in = random_inputs(2, 70, 3, 8, 32, 6, shared, gen, dtype);
      omp_set_num_threads(1);
      const auto one = outputs_and_grads(in, options(16));
      omp_set_num_threads(2);
      const auto two = outputs_and_grads(in, options(16));
      omp_set_num_threads(threads);
      CHECK(one == two);
    }
  }
}

TEST_CASE("mlp_memory: shared initial weights get the batch's summed gradient, and absent momenta are zero") {
  Generator gen(5);
  const NeuralMemoryOptions opts = options(4);
  Inputs shared = random_inputs(3, 11, 2, 3, 5, 2, true, gen);
  // The same weights copied for every sequence, as leaves of their own.
  auto per_batch_copy = [](const Tensor& w, const Shape& shape) {
    std::vector<double> one = w.to_f64_vector(), all;
    for (int b = 0; b < 3; ++b) all.insert(all.end(), one.begin(), one.end());
    return Tensor::from_vector<double>(all, shape).requires_grad_();
  };
  Inputs per_sequence = shared;
  per_sequence.w1 = per_batch_copy(shared.w1, {3, 2, 3, 5});
  per_sequence.w2 = per_batch_copy(shared.w2, {3, 2, 5, 2});
  const auto a = outputs_and_grads(shared, opts), b = outputs_and_grads(per_sequence, opts);
  for (size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    if (i == 11 || i == 12) {  // dW1, dW2: [H, ...] against [B, H, ...] summed over B
      const size_t per_batch = a[i].size();
      std::vector<double> summed(per_batch, 0.0);
      for (size_t j = 0; j < b[i].size(); ++j) summed[j % per_batch] += b[i][j];
      CHECK(rel_error(a[i], summed) < 1e-15);
    } else {
      CHECK(rel_error(a[i], b[i]) < 1e-15);
    }
  }
  // Undefined momenta: the same as zero ones (and no gradient for them).
  Inputs zero = shared, none = shared;
  zero.s1 = Tensor::zeros(shared.s1.shape(), DType::f64).requires_grad_();
  zero.s2 = Tensor::zeros(shared.s2.shape(), DType::f64).requires_grad_();
  none.s1 = none.s2 = Tensor();
  const auto with_zero = outputs_and_grads(zero, opts), without = outputs_and_grads(none, opts);
  REQUIRE(without.size() == with_zero.size() - 2);
  for (size_t i = 0; i < without.size(); ++i) CHECK(with_zero[i] == without[i]);
}

namespace {

bool all_finite(const std::vector<double>& x) {
  for (double v : x)
    if (!std::isfinite(v)) return false;
  return true;
}

// 16K tokens with every inner step at max_lr (theta logits of +12) and q, k L2-normalised as in
// the model; the eta and alpha logits drawn around `eta_mean` and `alpha_mean` with `spread`.
Inputs long_sequence(DType dtype, double eta_mean, double alpha_mean, double spread) {
  Generator gen(6);
  const int64_t B = 1, T = 16384, H = 2, d = 16, h = 64, e = 16;
  Inputs in = random_inputs(B, T, H, d, h, e, true, gen, DType::f64);
  in.q = l2_normalize(in.q.detach(), 1e-6);
  in.k = l2_normalize(in.k.detach(), 1e-6);
  in.theta = Tensor::full({B, T, H}, 12.0, DType::f64);
  in.eta = add(scale(Tensor::randn({B, T, H}, gen, 1.0, DType::f64), spread), Tensor::full({B, T, H}, eta_mean, DType::f64));
  in.alpha = add(scale(Tensor::randn({B, T, H}, gen, 1.0, DType::f64), spread), Tensor::full({B, T, H}, alpha_mean, DType::f64));
  in.s1 = in.s2 = Tensor();
  for (Tensor* t : in.all())
    if (t->defined()) *t = t->to(dtype).requires_grad_();
  return in;
}

}  // namespace

TEST_CASE("mlp_memory: 16K tokens at the largest inner step stay finite and close to f64 (f32)") {
  // A memory that keeps what it learns for a few hundred tokens (alpha about 0.007) with momentum
  // about 0.12: f32 stays close to f64 over the whole sequence: y and every gradient within 1e-5
  // (3e-6 seen), the final states (the sum of every step) within 1e-4 (4.2e-5 seen).
  {
    const auto f32 = outputs_and_grads(long_sequence(DType::f32, -2.0, -5.0, 1.0), options(64, 0, 0.1));
    const auto f64 = outputs_and_grads(long_sequence(DType::f64, -2.0, -5.0, 1.0), options(64, 0, 0.1));
    for (size_t i = 0; i < f32.size(); ++i) {
      CAPTURE(i);
      CHECK(all_finite(f32[i]));
      const bool final_state = i >= 1 && i <= 4;  // outputs_and_grads: y, W1, W2, S1, S2, then gradients
      CHECK(rel_error(f32[i], f64[i]) < (final_state ? 1e-4 : 1e-5));
    }
  }
  // Saturated gates (logits of spread 10): eta and 1 - alpha round to 0 or 1 in f32 and the
  // products of gates over a chunk underflow; every exponent stays <= 0, so nothing overflows.
  const auto saturated = outputs_and_grads(long_sequence(DType::f32, 0.0, 0.0, 10.0), options(64, 0, 0.1));
  for (size_t i = 0; i < saturated.size(); ++i) {
    CAPTURE(i);
    CHECK(all_finite(saturated[i]));
  }
}

TEST_CASE("mlp_memory: an empty sequence leaves the initial state and passes its gradient through") {
  Generator gen(8);
  Inputs in = random_inputs(2, 0, 3, 4, 6, 2, true, gen);
  in.s2 = Tensor();  // a zero momentum for the second layer
  MlpMemoryResult r = run(in, options(16));
  CHECK(r.y.shape() == Shape{2, 0, 3, 2});
  const std::vector<double> w1 = in.w1.to_f64_vector(), s1 = in.s1.to_f64_vector();
  std::vector<double> w1_per_sequence = w1;
  w1_per_sequence.insert(w1_per_sequence.end(), w1.begin(), w1.end());
  CHECK(r.state.w1.to_f64_vector() == w1_per_sequence);
  CHECK(r.state.s1.to_f64_vector() == s1);
  CHECK(r.state.s2.to_f64_vector() == std::vector<double>(static_cast<size_t>(2 * 3 * 6 * 2), 0.0));
  // The final W1's gradient reaches the shared initial W1 summed over the batch, S1's reaches S1.
  const Tensor seed_w = Tensor::randn(r.state.w1.shape(), gen, 1.0, DType::f64);
  const Tensor seed_s = Tensor::randn(r.state.s1.shape(), gen, 1.0, DType::f64);
  add(sum(mul(r.state.w1, seed_w)), sum(mul(r.state.s1, seed_s))).backward();
  const std::vector<double> sw = seed_w.to_f64_vector();
  std::vector<double> summed(w1.size());
  for (size_t i = 0; i < summed.size(); ++i) summed[i] = sw[i] + sw[i + w1.size()];
  CHECK(in.w1.grad().to_f64_vector() == summed);
  CHECK(in.s1.grad().to_f64_vector() == seed_s.to_f64_vector());
  CHECK(in.q.grad().numel() == 0);
}

TEST_CASE("mlp_memory: bad inputs are refused with the op's name and the shapes") {
  Generator gen(7);
  const Inputs in = random_inputs(2, 5, 3, 4, 6, 2, true, gen);
  const MemoryGateLogits gates{in.theta, in.eta, in.alpha};
  CHECK_THROWS_WITH_AS(mlp_memory(in.q, in.k, in.v, gates, weights(in.w1, Tensor())),
                       doctest::Contains("mlp_memory: the initial weights W1 and W2 are required"), Error);
  CHECK_THROWS_WITH_AS(mlp_memory(in.q, in.k, in.v, {in.theta, in.eta, randn64({2, 4, 3}, gen)}, weights(in.w1, in.w2)),
                       doctest::Contains("mlp_memory: the alpha logits [2, 4, 3] must be [B, T, H] = [2, 5, 3]"), Error);
  CHECK_THROWS_WITH_AS(mlp_memory(in.q, in.k, in.v, gates, weights(randn64({3, 5, 6}, gen), in.w2)),
                       doctest::Contains("mlp_memory: initial W1 [3, 5, 6] must be [B, H, 4, 6]"), Error);
  CHECK_THROWS_WITH_AS(mlp_memory(in.q, in.k, in.v, gates, weights(in.w1, randn64({2, 3, 6, 2}, gen))),
                       doctest::Contains("must both be per sequence [B, H, ...] or both shared [H, ...]"), Error);
  CHECK_THROWS_WITH_AS(mlp_memory(in.q, in.k, in.v, gates, {in.w1, in.w2, randn64({3, 4, 6}, gen), Tensor()}),
                       doctest::Contains("mlp_memory: initial S1 [3, 4, 6] must be [B, H, 4, 6] = [2, 3, 4, 6]"),
                       Error);
  CHECK_THROWS_WITH_AS(mlp_memory(in.q, in.k, in.v, gates, weights(in.w1, in.w2), options(0)),
                       doctest::Contains("mlp_memory: chunk must be >= 1, got 0"), Error);
  CHECK_THROWS_WITH_AS(mlp_memory(in.q, in.k, in.v, gates, weights(in.w1, in.w2), options(16, 0, 0.0)),
                       doctest::Contains("mlp_memory: max_lr must be > 0"), Error);
  CHECK_THROWS_WITH_AS(mlp_memory(in.q, in.k, in.v, gates, weights(in.w1, in.w2), options(16, -1)),
                       doctest::Contains("mlp_memory: checkpoint_chunks must be >= 0"), Error);
  CHECK_THROWS_WITH_AS(mlp_memory(in.q, in.k, in.v, gates, weights(cast(in.w1, DType::f32), cast(in.w2, DType::f32))),
                       doctest::Contains("mlp_memory: initial W1 is f32; with f64 inputs on cpu the states are f64"),
                       Error);
}
