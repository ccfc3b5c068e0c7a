// chunk_scan beyond the op table's rows (test_op_table.cpp: the reference, gradients and f32 in
// training, decoding, chunk 1 and one chunk): the two reductions against their own formulas, the
// reset at chunk starts, a sequence run in two calls equal to one call (values and gradients),
// gradient subsets, the same bits on any number of threads, initial ignored where token 0 starts
// a chunk, T = 0, and bad inputs named.
#include <omp.h>

#include <cmath>

#include "base/error.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

namespace {

// sum(h * r) for a fixed random r: a loss that weighs every output element differently.
Tensor weighted_sum(const Tensor& h, uint64_t seed) {
  Generator gen(seed);
  return sum(mul(h, Tensor::randn(h.shape(), gen, 1.0, DType::f64)));
}

// Tokens [begin, end) of a [1, T, C] tensor, as [1, end - begin, C] (differentiable).
Tensor tokens(const Tensor& x, int64_t begin, int64_t end) {
  const int64_t T = x.size(1), C = x.size(2);
  return reshape(slice_outer(reshape(x, {T, C}), begin, end), {1, end - begin, C});
}

}  // namespace

TEST_CASE("chunk_scan: chunk 1 is (1 - g) x") {
  Generator gen(1);
  Tensor x = randn64({2, 9, 5}, gen, 1.0, false), logit = randn64({2, 9, 5}, gen, 2.0, false);
  // (1 - g) x = x - g x, element by element as the scan forms it: compare with a 1-ulp margin.
  const std::vector<double> h = chunk_scan(x, logit, 1).to_f64_vector(), xv = x.to_f64_vector(),
                            g = sigmoid(logit).to_f64_vector();
  for (size_t i = 0; i < h.size(); ++i) CHECK(h[i] == doctest::Approx((1 - g[i]) * xv[i]).epsilon(1e-15));
  // A phase and an initial change nothing: every token starts its own chunk.
  CHECK(rel_error(chunk_scan(x, logit, 1, randn64({2, 5}, gen), 3), chunk_scan(x, logit, 1)) == 0);
}

TEST_CASE("chunk_scan: a chunk at least as long as the sequence is the plain gated recurrence") {
  Generator gen(2);
  const int64_t B = 2, T = 13, C = 3;
  Tensor x = randn64({B, T, C}, gen, 1.0, false), logit = randn64({B, T, C}, gen, 2.0, false);
  const std::vector<double> xv = x.to_f64_vector(), lv = logit.to_f64_vector();
  std::vector<double> expected(xv.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      double state = 0;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t i = (b * T + t) * C + c;
        const double g = 1 / (1 + std::exp(-lv[i]));
        state = g * state + (1 - g) * xv[i];
        expected[i] = state;
      }
    }
  for (int64_t chunk : {T, T + 1, int64_t{1} << 40}) {
    CAPTURE(chunk);
    CHECK(rel_error(chunk_scan(x, logit, chunk).to_f64_vector(), expected) < 1e-15);
  }
}

TEST_CASE("chunk_scan: the state resets where a chunk starts") {
  Generator gen(3);
  const int64_t T = 14, C = 4, chunk = 4;
  for (int64_t phase : {0, 1, 6}) {
    CAPTURE(phase);
    // Token `first` starts the second chunk that the tokens reach.
    const int64_t first = chunk - phase % chunk;
    Tensor x = randn64({1, T, C}, gen, 1.0, false), logit = randn64({1, T, C}, gen, 1.0, false);
    Tensor initial = randn64({1, C}, gen, 1.0, false);
    Tensor changed = x.clone();
    for (int64_t i = 0; i < first * C; ++i) changed.data<double>()[i] += 1.0;
    const std::vector<double> h = chunk_scan(x, logit, chunk, initial, phase).to_f64_vector();
    const std::vector<double> h2 = chunk_scan(changed, logit, chunk, initial, phase).to_f64_vector();
    for (int64_t i = 0; i < T * C; ++i) {
      CAPTURE(i);
      if (i < first * C) CHECK(h[i] != h2[i]);
      else CHECK(h[i] == h2[i]);
    }
  }
}

TEST_CASE("chunk_scan: two calls, the second from the first's phase and last state, equal one call") {
  const int64_t T = 23, C = 3, chunk = 5;
  for (int64_t split : {7, 10, 1, 22}) {  // inside a chunk, at a chunk start, after one token, before the last
    CAPTURE(split);
    Generator gen(4);
    Tensor x = randn64({1, T, C}, gen), logit = randn64({1, T, C}, gen, 2.0);
    Tensor whole = chunk_scan(x, logit, chunk);
    weighted_sum(whole, 5).backward();
    const Tensor dx = x.grad().clone(), dlogit = logit.grad().clone();
    x.zero_grad();
    logit.zero_grad();

    Tensor first = chunk_scan(tokens(x, 0, split), tokens(logit, 0, split), chunk);
    Tensor last_row = reshape(tokens(first, split - 1, split), {1, C});
    Tensor second = chunk_scan(tokens(x, split, T), tokens(logit, split, T), chunk, last_row, split);
    std::vector<double> joined = first.to_f64_vector(), rest = second.to_f64_vector();
    joined.insert(joined.end(), rest.begin(), rest.end());
    CHECK(rel_error(joined, whole.to_f64_vector()) == 0);
    // The same loss over the two parts: the state's gradient carries the second call's back.
    Generator r(5);
    Tensor weights = Tensor::randn({1, T, C}, r, 1.0, DType::f64);
    add(sum(mul(first, tokens(weights, 0, split))), sum(mul(second, tokens(weights, split, T)))).backward();
    CHECK(rel_error(x.grad(), dx) < 1e-15);
    CHECK(rel_error(logit.grad(), dlogit) < 1e-15);
  }
}

TEST_CASE("chunk_scan: any subset of the gradients equals the same gradients of the full backward") {
  Generator gen(9);
  const Tensor x0 = randn64({2, 11, 3}, gen, 1.0, false), logit0 = randn64({2, 11, 3}, gen, 2.0, false),
               initial0 = randn64({2, 3}, gen, 1.0, false);
  // Gradients of x, gate_logit and initial for the inputs named by the bits of `wanted`.
  auto gradients = [&](int wanted) {
    std::vector<Tensor> in{x0.clone(), logit0.clone(), initial0.clone()};
    for (int k = 0; k < 3; ++k)
      if (wanted >> k & 1) in[k].requires_grad_();
    weighted_sum(chunk_scan(in[0], in[1], 4, in[2], 3), 10).backward();
    std::vector<Tensor> grads;
    for (const Tensor& t : in) grads.push_back(t.requires_grad() ? t.grad() : Tensor());
    return grads;
  };
  const std::vector<Tensor> all = gradients(7);
  for (int wanted = 1; wanted < 7; ++wanted) {
    CAPTURE(wanted);
    const std::vector<Tensor> some = gradients(wanted);
    for (int k = 0; k < 3; ++k)
      if (wanted >> k & 1) CHECK(some[k].to_f64_vector() == all[k].to_f64_vector());
  }
}

TEST_CASE("chunk_scan: the same bits on three threads, twice, and on one (f32)") {
  Generator gen(11);
  const Shape shape{2, 300, 70};  // enough work for the threads to share it
  const Tensor x = Tensor::randn(shape, gen, 1.0, DType::f32), logit = Tensor::randn(shape, gen, 2.0, DType::f32);
  const Tensor initial = Tensor::randn({2, 70}, gen, 1.0, DType::f32), dh = Tensor::randn(shape, gen, 1.0, DType::f32);
  auto bits = [&] {
    Tensor xl = x.clone().requires_grad_(), ll = logit.clone().requires_grad_(), il = initial.clone().requires_grad_();
    Tensor h = chunk_scan(xl, ll, 16, il, 5);
    h.backward(dh);
    std::vector<double> all;
    for (const Tensor& t : {h, xl.grad(), ll.grad(), il.grad()}) {
      const std::vector<double> v = t.to_f64_vector();
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  };
  const int threads = omp_get_max_threads();
  omp_set_num_threads(3);
  const std::vector<double> first = bits(), second = bits();
  omp_set_num_threads(1);
  const std::vector<double> single = bits();
  omp_set_num_threads(threads);
  CHECK(first == second);
  CHECK(first == single);
}

TEST_CASE("chunk_scan: initial is ignored, with a zero gradient, when token 0 starts a chunk") {
  Generator gen(6);
  Tensor x = randn64({2, 6, 3}, gen), logit = randn64({2, 6, 3}, gen), initial = randn64({2, 3}, gen);
  Tensor h = chunk_scan(x, logit, 4, initial, 8);
  CHECK(rel_error(h, chunk_scan(x, logit, 4)) == 0);
  weighted_sum(h, 7).backward();
  REQUIRE(initial.grad().defined());
  for (double v : initial.grad().to_f64_vector()) CHECK(v == 0);
}

TEST_CASE("chunk_scan: bad inputs are named") {
  Generator gen(7);
  Tensor x = randn64({2, 5, 3}, gen), logit = randn64({2, 5, 3}, gen);
  CHECK_THROWS_WITH_AS(chunk_scan(x, randn64({2, 5, 4}, gen), 4),
                       doctest::Contains("chunk_scan: gate_logit [2, 5, 4] must have x's shape [2, 5, 3]"), Error);
  CHECK_THROWS_WITH_AS(chunk_scan(randn64({5, 3}, gen), randn64({5, 3}, gen), 4),
                       doctest::Contains("chunk_scan: x [B, T, C] must have 3 dimensions, got [5, 3]"), Error);
  CHECK_THROWS_WITH_AS(chunk_scan(x, logit, 0), doctest::Contains("chunk_scan: chunk must be at least 1, got 0"),
                       Error);
  CHECK_THROWS_WITH_AS(chunk_scan(x, logit, 4, Tensor(), -1),
                       doctest::Contains("chunk_scan: phase must be at least 0, got -1"), Error);
  CHECK_THROWS_WITH_AS(chunk_scan(x, logit, 4, randn64({2, 5, 3}, gen), 1),
                       doctest::Contains("chunk_scan: initial [2, 5, 3] must be [B, C] = [2, 3] (x [2, 5, 3])"), Error);
  CHECK_THROWS_WITH_AS(chunk_scan(x, logit, 4, randn64({3, 3}, gen), 1),
                       doctest::Contains("chunk_scan: initial [3, 3] must be [B, C] = [2, 3]"), Error);
  CHECK_THROWS_WITH_AS(chunk_scan(x, logit.to(DType::f32), 4), doctest::Contains("chunk_scan: dtype mismatch"), Error);
}

TEST_CASE("chunk_scan: an empty sequence gives an empty output and a zero initial gradient") {
  Generator gen(8);
  Tensor x = randn64({2, 0, 3}, gen), logit = randn64({2, 0, 3}, gen), initial = randn64({2, 3}, gen);
  Tensor h = chunk_scan(x, logit, 4, initial, 1);
  CHECK(h.shape() == Shape{2, 0, 3});
  sum(h).backward();
  REQUIRE(initial.grad().defined());
  for (double v : initial.grad().to_f64_vector()) CHECK(v == 0);
}
