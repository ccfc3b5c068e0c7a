#include <omp.h>

#include "framework/ops/joins.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("elementwise ops: forward values and gradient checks") {
  Generator gen(1);
  Tensor a = randn64({3, 5}, gen), b = randn64({3, 5}, gen);
  Tensor y = add(a, b);
  auto av = a.to_f64_vector(), bv = b.to_f64_vector(), yv = y.to_f64_vector();
  for (size_t i = 0; i < av.size(); ++i) CHECK(yv[i] == av[i] + bv[i]);
  Tensor m = mul(a, b);
  auto mv = m.to_f64_vector();
  for (size_t i = 0; i < av.size(); ++i) CHECK(mv[i] == av[i] * bv[i]);
  CHECK(gradcheck("add", [](auto& in) { return add(in[0], in[1]); }, {a, b}) <= 1.0);
  CHECK(gradcheck("mul", [](auto& in) { return mul(in[0], in[1]); }, {a, b}) <= 1.0);
  CHECK(gradcheck("scale", [](auto& in) { return scale(in[0], -2.5); }, {a}) <= 1.0);
  CHECK(gradcheck("sum", [](auto& in) { return sum(in[0]); }, {a}) <= 1.0);
  CHECK(gradcheck("mean", [](auto& in) { return mean(in[0]); }, {a}) <= 1.0);
  CHECK(gradcheck("reshape+slice", [](auto& in) { return mul(in[0].reshape({5, 3}).slice_outer(1, 4), in[0].reshape({5, 3}).slice_outer(2, 5)); }, {a}) <= 1.0);
}

TEST_CASE("sum is bit-identical for any thread count") {
  Generator gen(2);
  Tensor x = Tensor::randn({100003}, gen, 1.0, DType::f32);
  // Changing the number of threads (3, then 1, whatever OMP_NUM_THREADS says) must not change the bits.
  int saved = omp_get_max_threads();
  omp_set_num_threads(3);
  double s1 = sum(x).item();
  CHECK(std::abs(s1) > 0);
  omp_set_num_threads(1);
  double s2 = sum(x).item();
  omp_set_num_threads(saved);
  CHECK(s1 == s2);
}

TEST_CASE("a tensor used twice accumulates both gradients") {
  Generator gen(3);
  Tensor x = randn64({4}, gen);
  Tensor y = sum(mul(x, x));  // d/dx = 2x
  y.backward();
  auto g = x.grad().to_f64_vector(), xv = x.to_f64_vector();
  for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == doctest::Approx(2 * xv[i]).epsilon(1e-14));
  // A second backward through a fresh graph accumulates into the leaf's gradient.
  sum(x).backward();
  g = x.grad().to_f64_vector();
  for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == doctest::Approx(2 * xv[i] + 1).epsilon(1e-14));
}

TEST_CASE("gradients summed into a tensor nobody else holds, never into one an op handed to several inputs") {
  // out = h m + (h + m): the outer add hands one gradient tensor G to both its inputs, the inner
  // add hands G on to h and m. When h's second gradient (from h m) arrives, G is still m's
  // pending gradient: summing into it in place would change m's. A sum into a tensor of h's own
  // may go in place (no new tensor each time).
  Generator gen(5);
  const Tensor w = randn64({6}, gen, 1.0, false), u = randn64({6}, gen, 1.0, false);
  auto fn = [&](auto& in) {
    const Tensor h = mul(in[0], w), m = mul(in[1], u);
    return add(mul(h, m), add(h, m));
  };
  CHECK(gradcheck("shared gradients", fn, {randn64({6}, gen), randn64({6}, gen)}) <= 1.0);
}

TEST_CASE("an op adds its gradient into the sum so far, with the bits of a separate add") {
  // y = r + rms_norm(x) W^T with r = x (a block's residual stream): x's gradient is y's, passed
  // through, plus the norm's, which rms_norm's backward adds into the first (gradient_so_far)
  // instead of writing a tensor of its own for backward() to add. The sum must be the bits of
  // add(g, the norm path's gradient alone), in f32 where the rounding of each step shows.
  Generator gen(6);
  const Tensor x0 = Tensor::randn({5, 40}, gen, 1.0, DType::f32), nw = Tensor::randn({40}, gen, 1.0, DType::f32);
  const Tensor w = Tensor::randn({40, 40}, gen, 0.2, DType::f32), g = Tensor::randn({5, 40}, gen, 1.0, DType::f32);
  // x comes out of an op (a leaf's gradients are summed apart), and y's gradient out of mul (a
  // tensor of the graph's own, not the caller's seed).
  Tensor leaf = x0.clone();
  leaf.requires_grad_();
  const Tensor x = scale(leaf, 1.0);
  sum(mul(linear(rms_norm(x, nw, 1e-6), w, Tensor(), x), g)).backward();
  Tensor alone = x0.clone();
  alone.requires_grad_();
  sum(mul(linear(rms_norm(alone, nw, 1e-6), w), g)).backward();
  CHECK(leaf.grad().to_f64_vector() == add(g, alone.grad()).to_f64_vector());
  CHECK(autograd::gradient_so_far(0).defined() == false);  // outside a backward there is none
}

TEST_CASE("a backward writes its gradient over a saved input nothing else holds, and only then") {
  // glu_gate_halves saves its joined input; when the graph alone held it, its backward writes the
  // input's gradient over it (autograd::only_holder). Held by the caller as well, it must come out
  // untouched, and the gradients must be the same bits either way.
  Generator gen(7);
  const Tensor x0 = Tensor::randn({6, 24}, gen, 1.0, DType::f32), w = Tensor::randn({40, 24}, gen, 0.3, DType::f32);
  const Tensor g = Tensor::randn({6, 20}, gen, 1.0, DType::f32);
  auto gradient = [&](bool hold) {
    Tensor x = x0.clone();
    x.requires_grad_();
    Tensor held;
    {
      Tensor ab = linear(x, w);
      if (hold) held = ab;
      sum(mul(glu_gate_halves(ab, GateActivation::silu), g)).backward();
    }
    if (hold) CHECK(held.to_f64_vector() == linear(x0, w).to_f64_vector());
    return x.grad().to_f64_vector();
  };
  CHECK(gradient(false) == gradient(true));
  CHECK(!autograd::only_holder(Tensor()));
}

TEST_CASE("leaf gradients never share data with each other or with the seed") {
  // add's backward hands the same gradient tensor to both inputs, which is also the seed: each
  // leaf must still get its own copy, since optimisers scale gradients in place.
  Generator gen(4);
  Tensor a = randn64({5}, gen), b = randn64({5}, gen);
  Tensor seed = randn64({5}, gen, 1.0, /*grad=*/false);
  add(a, b).backward(seed);
  const Tensor ga = a.grad(), gb = b.grad();
  CHECK(ga.data<double>() != gb.data<double>());
  CHECK(ga.data<double>() != seed.data<double>());
  CHECK(gb.data<double>() != seed.data<double>());
  ga.data<double>()[0] = 1e300;
  CHECK(gb.to_f64_vector()[0] == seed.to_f64_vector()[0]);
}

TEST_CASE("nothing is recorded under NoGradGuard") {
  Generator gen(4);
  Tensor x = randn64({4}, gen);
  {
    NoGradGuard guard;
    Tensor y = mul(x, x);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
  }
  Tensor z = mul(x, x);
  CHECK(z.requires_grad());
  CHECK_FALSE(z.is_leaf());
}

TEST_CASE("a second backward through a freed graph is a clear error") {
  Generator gen(5);
  Tensor x = randn64({3}, gen);
  Tensor y = sum(mul(x, x));
  y.backward();
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("a second time"), Error);
}

TEST_CASE("shape mismatches name the op and both shapes") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({3, 2});
  CHECK_THROWS_WITH_AS(add(a, b), "add: shape mismatch [2, 3] vs [3, 2]", Error);
  Tensor c = Tensor::zeros({2, 3}, DType::f64);
  CHECK_THROWS_WITH_AS(mul(a, c), doctest::Contains("dtype mismatch"), Error);
  CHECK_THROWS_WITH_AS(a.reshape({4, 2}), doctest::Contains("cannot view [2, 3]"), Error);
}
