// The cast op mixed precision is built from: values are Tensor::to's, the gradient comes back in
// the input's type, and a cast to the type a tensor already has is no op at all.
#include <cmath>

#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("cast: f64 -> f32 -> f64 values round to f32 and the gradient check passes") {
  Generator gen(3);
  Tensor x = randn64({4, 6}, gen);
  Tensor y = cast(x, DType::f32);
  REQUIRE(y.dtype() == DType::f32);
  auto xv = x.to_f64_vector(), yv = y.to_f64_vector();
  for (size_t i = 0; i < xv.size(); ++i) CHECK(yv[i] == static_cast<double>(static_cast<float>(xv[i])));
  // The round trip through f32 is the identity up to f32 rounding: a finite-difference step of
  // 1e-2 keeps that rounding (~1e-7) far below the tolerance.
  GradcheckOptions opt;
  opt.eps = 1e-2;
  opt.rtol = 1e-4;
  opt.atol = 1e-6;
  CHECK(gradcheck("cast f64->f32->f64", [](auto& in) { return mul(cast(cast(in[0], DType::f32), DType::f64), in[1]); },
                  {x, randn64({4, 6}, gen)}, opt) <= 1.0);
}

TEST_CASE("cast: the gradient reaches an f64 leaf through f32 ops in f64") {
  Generator gen(4);
  Tensor x = randn64({3, 5}, gen);
  Tensor x32 = cast(x, DType::f32);
  sum(mul(x32, x32)).backward();  // d/dx sum(x^2) = 2x, computed in f32
  REQUIRE(x.grad().defined());
  CHECK(x.grad().dtype() == DType::f64);
  auto xv = x.to_f64_vector(), gv = x.grad().to_f64_vector();
  for (size_t i = 0; i < xv.size(); ++i) CHECK(gv[i] == doctest::Approx(2 * xv[i]).epsilon(1e-6));
}

TEST_CASE("cast: to the same type returns the input and records nothing") {
  Generator gen(5);
  Tensor x = randn64({2, 3}, gen);
  Tensor y = cast(x, DType::f64);
  CHECK(y.same(x));
  CHECK(y.is_leaf());
  Tensor ids = Tensor::from_vector<int32_t>({1, 2}, {2});
  CHECK_THROWS_WITH_AS(cast(ids, DType::f32), doctest::Contains("cast: needs a floating tensor"), Error);
  CHECK_THROWS_WITH_AS(cast(x, DType::i32), doctest::Contains("cast: target type must be floating, got i32"), Error);
}
