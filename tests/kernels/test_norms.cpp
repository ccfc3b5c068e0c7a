// RMSNorm, SimpleRMSNorm and L2 normalisation.
#include <cmath>

#include "base/error.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

namespace {

std::vector<double> rms_ref(const Tensor& x, const std::vector<double>* w, double eps) {
  auto v = x.to_f64_vector();
  const int64_t D = x.size(-1), rows = x.numel() / D;
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t j = 0; j < D; ++j) ss += v[r * D + j] * v[r * D + j];
    double inv = 1 / std::sqrt(ss / D + eps);
    for (int64_t j = 0; j < D; ++j) v[r * D + j] *= inv * (w ? (*w)[j] : 1.0);
  }
  return v;
}

}  // namespace

TEST_CASE("rms_norm and simple_rms_norm: forward against the formula, gradients of input and weight") {
  Generator gen(1);
  Tensor x = randn64({2, 3, 13}, gen, 2.0, false), w = randn64({13}, gen, 1.0, false);
  auto wv = w.to_f64_vector();
  CHECK(rel_error(rms_norm(x, w, 1e-6).to_f64_vector(), rms_ref(x, &wv, 1e-6)) < 1e-15);
  CHECK(rel_error(simple_rms_norm(x, 1e-6).to_f64_vector(), rms_ref(x, nullptr, 1e-6)) < 1e-15);
  auto fn = [](auto& in) { return rms_norm(in[0], in[1], 1e-5); };
  CHECK(gradcheck("rms_norm", fn, {randn64({3, 7}, gen), randn64({7}, gen)}) <= 1.0);
  CHECK(gradcheck("rms_norm", fn, {randn64({1, 1}, gen), randn64({1}, gen)}) <= 1.0);
  auto simple = [](auto& in) { return simple_rms_norm(in[0], 1e-5); };
  CHECK(gradcheck("simple_rms_norm", simple, {randn64({2, 2, 9}, gen)}) <= 1.0);
  // Many rows: the weight gradient sums over them (f32 accumulation over 300 rows).
  CHECK(f32_vs_f64(fn, {randn64({300, 40}, gen), randn64({40}, gen)}) < 1e-5);
  CHECK_THROWS_WITH_AS(rms_norm(x, randn64({12}, gen), 1e-6),
                       doctest::Contains("rms_norm: weight [12] does not match input [2, 3, 13]"), Error);
}

TEST_CASE("l2_normalize: unit rows, and the gradient on both sides of eps") {
  Generator gen(2);
  Tensor x = randn64({4, 6}, gen, 1.0, false);
  auto y = l2_normalize(x, 1e-12).to_f64_vector();
  for (int r = 0; r < 4; ++r) {
    double n = 0;
    for (int j = 0; j < 6; ++j) n += y[r * 6 + j] * y[r * 6 + j];
    CHECK(std::abs(n - 1) < 1e-14);
  }
  auto fn = [](auto& in) { return l2_normalize(in[0], 0.05); };
  CHECK(gradcheck("l2_normalize", fn, {randn64({3, 5}, gen)}) <= 1.0);
  // A row whose norm is below eps: y = x / eps, a linear map.
  Tensor small = randn64({2, 3}, gen, 0.001);
  auto sv = small.to_f64_vector();
  auto ys = l2_normalize(small, 0.05).to_f64_vector();
  for (size_t i = 0; i < sv.size(); ++i) CHECK(ys[i] == doctest::Approx(sv[i] / 0.05).epsilon(1e-14));
  CHECK(gradcheck("l2_normalize small", fn, {small}) <= 1.0);
  CHECK(f32_vs_f64(fn, {randn64({8, 64}, gen)}) < 1e-6);
  CHECK_THROWS_WITH_AS(l2_normalize(x, 0.0), doctest::Contains("l2_normalize: eps must be positive"), Error);
}
