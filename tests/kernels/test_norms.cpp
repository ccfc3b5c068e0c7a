// RMSNorm, SimpleRMSNorm and L2 normalisation beyond the op table's rows (test_op_table.cpp): unit
// rows, rows whose norm is below eps, and bad inputs.
#include <cmath>

#include "base/error.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("rms_norm: a weight that does not match the input names both shapes") {
  Generator gen(1);
  Tensor x = randn64({2, 3, 13}, gen, 2.0, false);
  CHECK_THROWS_WITH_AS(rms_norm(x, randn64({12}, gen), 1e-6),
                       doctest::Contains("rms_norm: weight [12] does not match input [2, 3, 13]"), Error);
}

TEST_CASE("l2_normalize: unit rows, and the gradient below eps") {
  Generator gen(2);
  Tensor x = randn64({4, 6}, gen, 1.0, false);
  auto y = l2_normalize(x, 1e-12).to_f64_vector();
  for (int r = 0; r < 4; ++r) {
    double n = 0;
    for (int j = 0; j < 6; ++j) n += y[r * 6 + j] * y[r * 6 + j];
    CHECK(std::abs(n - 1) < 1e-14);
  }
  auto fn = [](auto& in) { return l2_normalize(in[0], 0.05); };
  // A row whose norm is below eps: y = x / eps, a linear map.
  Tensor small = randn64({2, 3}, gen, 0.001);
  auto sv = small.to_f64_vector();
  auto ys = l2_normalize(small, 0.05).to_f64_vector();
  for (size_t i = 0; i < sv.size(); ++i) CHECK(ys[i] == doctest::Approx(sv[i] / 0.05).epsilon(1e-14));
  CHECK(gradcheck("l2_normalize small", fn, {small}) <= 1.0);
  CHECK_THROWS_WITH_AS(l2_normalize(x, 0.0), doctest::Contains("l2_normalize: eps must be positive"), Error);
}
