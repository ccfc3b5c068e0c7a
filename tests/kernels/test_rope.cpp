// rope beyond the op table's row (test_op_table.cpp: the formula, gradients, f32): position offsets,
// relative positions, an odd head dimension.
#include "base/error.h"
#include "gradcheck.h"

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
