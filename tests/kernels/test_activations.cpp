// Activations, softmax and the GLU gate beyond the op table's rows (test_op_table.cpp): the GELU
// approximation, extreme inputs over many vectorised blocks, large logits, bad inputs.
#include <cmath>
#include <cstdint>
#include <vector>

#include "base/error.h"
#include "gradcheck.h"
#include "kernels/activations.h"
#include "kernels/elementwise.h"
#include "kernels/glu_gate.h"

using namespace eat;
using namespace eat::test;

namespace {

std::vector<double> map_values(const Tensor& x, double (*f)(double)) {
  auto v = x.to_f64_vector();
  for (double& a : v) a = f(a);
  return v;
}

double silu_ref(double x) { return x / (1 + std::exp(-x)); }
double sigmoid_ref(double x) { return 1 / (1 + std::exp(-x)); }
double gelu_ref(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }

}  // namespace

TEST_CASE("gelu: the tanh form approximates the exact one; a non-float input names the op") {
  // Forward, gradients and f32 of every activation: the op table (test_op_table.cpp).
  Generator gen(1);
  Tensor x = randn64({3, 37}, gen, 3.0, false);
  // The tanh form approximates the exact one to about 1e-3 absolute.
  CHECK(rel_error(gelu(x, GeluApprox::tanh).to_f64_vector(), map_values(x, gelu_ref)) < 1e-3);
  CHECK_THROWS_WITH_AS(silu(Tensor::from_vector<int32_t>({1, 2}, {2})), doctest::Contains("silu"), Error);
}

TEST_CASE("silu, sigmoid and the SwiGLU gate over many blocks and extreme inputs, both precisions") {
  // The vectorised sigmoid runs in blocks of 1024 spread over threads: 2085 values cover two full
  // blocks and a ragged one. Inputs sweep [-120, 120], past where exp overflows in f32 (88.7).
  const int64_t n = 2085;
  std::vector<double> xs(n), seeds(n), others(n);  // per precision below: as that precision stores them
  for (int64_t i = 0; i < n; ++i) {
    xs[i] = -120.0 + 240.0 * static_cast<double>(i) / static_cast<double>(n - 1);
    seeds[i] = 0.5 + 0.25 * std::sin(static_cast<double>(i));
    others[i] = 1.0 + 0.5 * std::cos(static_cast<double>(i));
  }
  auto d_silu = [](double x) { double s = sigmoid_ref(x); return s * (1 + x * (1 - s)); };
  auto d_sigmoid = [](double x) { double s = sigmoid_ref(x); return s * (1 - s); };
  for (DType dt : {DType::f64, DType::f32}) {
    CAPTURE(std::string(dtype_name(dt)));
    // f64: within a few ulp of the closed form; f32: 1e-6 relative (a few ulp), with an absolute
    // floor where the exact value is below f32's normal range.
    const double rel = dt == DType::f64 ? 1e-14 : 1e-6, floor = dt == DType::f64 ? 1e-300 : 1e-30;
    // The derivatives hold 1 - s, which cancels as s nears 1 (an error of one rounding of s, at
    // most eps * s, is then no longer small relative to the result): `scale_of` gives that
    // error's size, a few roundings of it are allowed on top.
    const double eps = dt == DType::f64 ? 0x1p-52 : 0x1p-23;
    auto near = [&](const std::vector<double>& got, auto want_of, auto scale_of) {
      for (int64_t i = 0; i < n; ++i) {
        const double want = want_of(i);
        CAPTURE(xs[i]);
        CHECK(std::isfinite(got[i]));
        CHECK(std::abs(got[i] - want) <= rel * std::abs(want) + 4 * eps * scale_of(i) + floor);
      }
    };
    auto none = [](int64_t) { return 0.0; };
    // The size of s (and of x s) where a derivative takes 1 - s.
    auto s_scale = [&](int64_t i) { return sigmoid_ref(xs[i]) * (1 + std::abs(xs[i])); };
    auto make = [&](const std::vector<double>& v, bool grad) {
      Tensor t = Tensor::from_vector<double>(v, {n}).to(dt);
      if (grad) t.requires_grad_();
      return t;
    };
    Tensor x = make(xs, true), seed = make(seeds, false), other = make(others, true);
    // The references take the inputs as stored (rounded to f32 in the f32 pass).
    xs = x.to_f64_vector();
    seeds = seed.to_f64_vector();
    others = other.to_f64_vector();
    Tensor y = silu(x);
    near(y.to_f64_vector(), [&](int64_t i) { return silu_ref(xs[i]); }, none);
    y.backward(seed);
    near(x.grad().to_f64_vector(), [&](int64_t i) { return seeds[i] * d_silu(xs[i]); },
         [&](int64_t i) { return seeds[i] * s_scale(i); });
    x.zero_grad();
    y = sigmoid(x);
    near(y.to_f64_vector(), [&](int64_t i) { return sigmoid_ref(xs[i]); }, none);
    y.backward(seed);
    near(x.grad().to_f64_vector(), [&](int64_t i) { return seeds[i] * d_sigmoid(xs[i]); },
         [&](int64_t i) { return seeds[i] * s_scale(i); });
    x.zero_grad();
    y = glu_gate(x, other, GateActivation::silu);
    near(y.to_f64_vector(), [&](int64_t i) { return silu_ref(xs[i]) * others[i]; }, none);
    y.backward(seed);
    near(x.grad().to_f64_vector(), [&](int64_t i) { return seeds[i] * others[i] * d_silu(xs[i]); },
         [&](int64_t i) { return seeds[i] * others[i] * s_scale(i); });
    near(other.grad().to_f64_vector(), [&](int64_t i) { return seeds[i] * silu_ref(xs[i]); }, none);
  }
}

TEST_CASE("softmax: stable for large logits") {
  Generator gen(2);
  Tensor x = randn64({4, 9}, gen, 2.0, false);
  auto v = x.to_f64_vector(), want = v;
  for (int r = 0; r < 4; ++r) {
    double z = 0;
    for (int j = 0; j < 9; ++j) z += std::exp(v[r * 9 + j]);
    for (int j = 0; j < 9; ++j) want[r * 9 + j] = std::exp(v[r * 9 + j]) / z;
  }
  // Shifting a row by 1000 changes nothing and overflows nothing.
  auto shifted = v;
  for (double& a : shifted) a += 1000;
  Tensor big = Tensor::from_vector<double>(shifted, {4, 9});
  CHECK(rel_error(softmax(big).to_f64_vector(), want) < 1e-12);
}

TEST_CASE("glu_gate: inputs of different shapes name the op") {
  Generator gen(3);
  CHECK_THROWS_WITH_AS(glu_gate(randn64({3, 11}, gen), randn64({3, 10}, gen), GateActivation::silu),
                       doctest::Contains("glu_gate"), Error);
}

TEST_CASE("silu and sigmoid: a value's bits do not depend on where its run of values ends") {
  // The values past a run's last whole vector take the same vector code as the rest: 37 values
  // alone, and the same 37 at the start of 64 (and at an odd offset inside them), agree bit for
  // bit. Eigen's scalar exp, which it gives such values by itself, differs in the last bits.
  // The outputs lie at every offset from a 64-byte boundary: Eigen gives the values before an
  // output's first aligned one its scalar exp too.
  Generator gen(7);
  const Tensor x = Tensor::randn({64}, gen, 3.0);
  const float* xs = x.data<float>();
  const std::vector<float> dy(64, 1.0f);
  std::vector<float> storage(64 * 8 + 16);
  float* aligned = storage.data();
  while (reinterpret_cast<std::uintptr_t>(aligned) % 64 != 0) ++aligned;
  for (Activation act : {Activation::silu, Activation::sigmoid}) {
    std::vector<float> all(64), grad_all(64);
    cpu::activation_forward<float>(act, xs, all.data(), 64);
    cpu::activation_backward<float>(act, xs, dy.data(), grad_all.data(), 64);
    for (int offset = 0; offset < 16; ++offset) {
      CAPTURE(static_cast<int>(act));
      CAPTURE(offset);
      float* part = aligned + offset;
      float* shifted = aligned + 64 + offset;
      float* grad_part = aligned + 128 + offset;
      float* whole = aligned + 192 + offset;
      cpu::activation_forward<float>(act, xs, part, 37);
      cpu::activation_forward<float>(act, xs + 5, shifted, 37);
      cpu::activation_backward<float>(act, xs, dy.data(), grad_part, 37);
      cpu::activation_forward<float>(act, xs, whole, 64);
      CHECK(std::vector<float>(all.begin(), all.begin() + 37) == std::vector<float>(part, part + 37));
      CHECK(std::vector<float>(all.begin() + 5, all.begin() + 42) == std::vector<float>(shifted, shifted + 37));
      CHECK(std::vector<float>(grad_all.begin(), grad_all.begin() + 37) ==
            std::vector<float>(grad_part, grad_part + 37));
      CHECK(all == std::vector<float>(whole, whole + 64));
    }
  }
}

TEST_CASE("glu_gate_halves backward over its input (dab = ab) gives the bits it gives into a fresh tensor") {
  // 3 rows of 2 x 700: runs that cross the pointwise blocks and end mid-row.
  Generator gen(9);
  const Tensor ab = Tensor::randn({3, 1400}, gen, 2.0), dy = Tensor::randn({3, 700}, gen);
  for (bool silu : {true, false}) {
    CAPTURE(silu);
    std::vector<float> fresh(ab.numel()), over(ab.data<float>(), ab.data<float>() + ab.numel());
    cpu::glu_gate_halves_backward<float>(silu, ab.data<float>(), dy.data<float>(), fresh.data(), 3, 700);
    cpu::glu_gate_halves_backward<float>(silu, over.data(), dy.data<float>(), over.data(), 3, 700);
    CHECK(fresh == over);
  }
}

TEST_CASE("activation and mul backward over the incoming gradient (dx = dy, da = dy) give the bits of a separate output") {
  // Their ops write there when nothing else holds the gradient.
  Generator gen(10);
  const Tensor x = Tensor::randn({3000}, gen, 3.0), b = Tensor::randn({3000}, gen), dy = Tensor::randn({3000}, gen);
  const float *xs = x.data<float>(), *bs = b.data<float>(), *dys = dy.data<float>();
  for (Activation act : {Activation::silu, Activation::sigmoid, Activation::gelu_erf, Activation::gelu_tanh}) {
    CAPTURE(static_cast<int>(act));
    std::vector<float> apart(3000), over(dys, dys + 3000);
    cpu::activation_backward<float>(act, xs, dys, apart.data(), 3000);
    cpu::activation_backward<float>(act, xs, over.data(), over.data(), 3000);
    CHECK(apart == over);
  }
  std::vector<float> da(3000), db(3000), over(dys, dys + 3000), db_over(3000);
  cpu::mul_backward<float>(xs, bs, dys, da.data(), db.data(), 3000);
  cpu::mul_backward<float>(xs, bs, over.data(), over.data(), db_over.data(), 3000);
  CHECK(da == over);
  CHECK(db == db_over);
}
