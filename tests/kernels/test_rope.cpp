// rope beyond the op table's row (test_op_table.cpp: the formula, gradients, f32): position offsets,
// relative positions, an odd head dimension, calls in a row at other angles.
#include <cmath>
#include <vector>

#include "base/error.h"
#include "gradcheck.h"
#include "kernels/rope.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("rope: offsets continue a sequence, scores depend on relative positions, odd d is refused") {
  Generator gen(2);
  // The tail of a sequence with the right offset equals the tail of the whole sequence.
  Tensor x1 = randn64({1, 8, 1, 4}, gen, 1.0, false);
  Tensor full = rope(x1, 10000.0, 0);
  auto x1v = x1.to_f64_vector();
  Tensor part = rope(Tensor::from_vector<double>(std::vector<double>(x1v.begin() + 12, x1v.end()), {1, 5, 1, 4}), 10000.0, 3);
  auto fv = full.to_f64_vector(), pv = part.to_f64_vector();
  for (size_t i = 0; i < pv.size(); ++i) CHECK(pv[i] == doctest::Approx(fv[12 + i]).epsilon(1e-15));
  // <rope(q)_t, rope(k)_s> depends on t - s only.
  Tensor q = randn64({1, 1, 1, 8}, gen, 1.0, false), k = randn64({1, 1, 1, 8}, gen, 1.0, false);
  auto dot_at = [&](int64_t t, int64_t s) {
    auto a = rope(q, 10000.0, t).to_f64_vector(), b = rope(k, 10000.0, s).to_f64_vector();
    double r = 0;
    for (int i = 0; i < 8; ++i) r += a[i] * b[i];
    return r;
  };
  CHECK(dot_at(5, 2) == doctest::Approx(dot_at(1003, 1000)).epsilon(1e-12));
  CHECK_THROWS_WITH_AS(rope(randn64({1, 2, 1, 5}, gen)), doctest::Contains("rope: head dimension must be even"), Error);
}

TEST_CASE("rope: calls in a row at the same positions but another theta, chunk or width rotate by their own angles") {
  // The CPU kernel keeps the last table of angles: each call must still use its own.
  Generator gen(3);
  auto expected = [](const Tensor& x, double theta, int64_t offset, int64_t chunk) {
    const int64_t T = x.size(1), d = x.size(3);
    std::vector<double> v = x.to_f64_vector(), y(v.size());
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < d / 2; ++i) {
        const double a = static_cast<double>((offset + t) / chunk) * std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(d));
        y[t * d + i] = v[t * d + i] * std::cos(a) - v[t * d + i + d / 2] * std::sin(a);
        y[t * d + i + d / 2] = v[t * d + i + d / 2] * std::cos(a) + v[t * d + i] * std::sin(a);
      }
    return y;
  };
  Tensor x4 = randn64({1, 6, 1, 4}, gen, 1.0, false), x8 = randn64({1, 6, 1, 8}, gen, 1.0, false);
  struct Call {
    const Tensor& x;
    double theta;
    int64_t offset, chunk;
  };
  for (const Call& c : {Call{x4, 100.0, 2, 1}, Call{x4, 10000.0, 2, 1}, Call{x4, 10000.0, 2, 3}, Call{x8, 10000.0, 2, 3},
                        Call{x4, 10000.0, 2, 3}}) {
    CAPTURE(c.theta);
    CAPTURE(c.chunk);
    CHECK(rel_error(rope(c.x, c.theta, c.offset, c.chunk).to_f64_vector(), expected(c.x, c.theta, c.offset, c.chunk)) < 1e-15);
  }
}

TEST_CASE("rope in place (y = x) gives the bits it gives into a separate output, both directions") {
  // The backward rotates its incoming gradient in place when nothing else holds it.
  Generator gen(13);
  const Tensor x = Tensor::randn({2, 5, 3, 64}, gen);
  for (bool inverse : {false, true}) {
    CAPTURE(inverse);
    std::vector<float> apart(x.numel()), over(x.data<float>(), x.data<float>() + x.numel());
    cpu::rope_apply<float>(x.data<float>(), apart.data(), 2, 5, 3, 64, 10000.0, 7, 1, inverse);
    cpu::rope_apply<float>(over.data(), over.data(), 2, 5, 3, 64, 10000.0, 7, 1, inverse);
    CHECK(apart == over);
  }
}
