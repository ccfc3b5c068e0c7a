// The time-row helpers of sequence parallelism (framework/parallel/time_rows.h) on CPU tensors, and
// the halo exchange in a group of one, against index-by-index references: the rows land where
// they should, nothing else is touched, and bad ranges are refused with the values.
#include <doctest/doctest.h>

#include <vector>

#include "framework/parallel/halo.h"
#include "framework/parallel/time_rows.h"
#include "base/error.h"
#include "base/random.h"

using namespace eat;

namespace {

// Flat index of element (b, t, i) of a [B, T, ...] tensor with `inner` elements per token.
size_t at(int64_t b, int64_t t, int64_t i, int64_t T, int64_t inner) { return static_cast<size_t>((b * T + t) * inner + i); }

}  // namespace

TEST_CASE("time rows: copy_time moves the given rows of every sequence and leaves the others") {
  Generator gen(31);
  const int64_t B = 2, Tf = 5, Tt = 4, inner = 6;
  Tensor from = Tensor::randn({B, Tf, 3, 2}, gen, 1.0, DType::f64);
  Tensor to = Tensor::full({B, Tt, 3, 2}, -7.0, DType::f64);
  copy_time(from, 1, to, 2, 2);
  auto fv = from.to_f64_vector(), tv = to.to_f64_vector();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < Tt; ++t)
      for (int64_t i = 0; i < inner; ++i) {
        CAPTURE(b);
        CAPTURE(t);
        const double want = t >= 2 ? fv[at(b, t - 1, i, Tf, inner)] : -7.0;  // row 2 + j <- row 1 + j
        CHECK(tv[at(b, t, i, Tt, inner)] == want);
      }
}

TEST_CASE("time rows: add_time adds to the given rows only") {
  Generator gen(32);
  const int64_t B = 3, T = 6, n = 2, inner = 4;
  Tensor from = Tensor::randn({B, n, inner}, gen, 1.0, DType::f64), to = Tensor::randn({B, T, inner}, gen, 1.0, DType::f64);
  auto before = to.to_f64_vector(), fv = from.to_f64_vector();
  add_time(from, to, 3);
  auto tv = to.to_f64_vector();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < inner; ++i) {
        const double added = t >= 3 && t < 3 + n ? fv[at(b, t - 3, i, n, inner)] : 0.0;
        CHECK(tv[at(b, t, i, T, inner)] == before[at(b, t, i, T, inner)] + added);
      }
}

TEST_CASE("time rows: ranges past the time axis and mismatched rows are refused with the values") {
  Tensor from = Tensor::zeros({2, 5, 3}), to = Tensor::zeros({2, 4, 3});
  CHECK_THROWS_WITH_AS(copy_time(from, 4, to, 0, 2), doctest::Contains("2 rows from row 4 of [2, 5, 3]"), Error);
  CHECK_THROWS_WITH_AS(copy_time(from, 0, to, 3, 2), doctest::Contains("to row 3 of [2, 4, 3]"), Error);
  CHECK_THROWS_WITH_AS(copy_time(from, 0, Tensor::zeros({2, 4, 2}), 0, 1), doctest::Contains("differ in axis 2"), Error);
  CHECK_THROWS_WITH_AS(copy_time(from, 0, Tensor::zeros({2, 4, 3}, DType::f64), 0, 1), doctest::Contains("f64"), Error);
}

TEST_CASE("halo: in a group of one the halo is zeros and its gradient stays out of x's") {
  auto single = make_single_communicator();
  Generator gen(33);
  const int64_t B = 2, L = 3, C = 2;
  for (int64_t halo : {int64_t{0}, int64_t{2}, int64_t{7}}) {
    CAPTURE(halo);
    Tensor x = Tensor::randn({B, L, C}, gen, 1.0, DType::f64).requires_grad_();
    Tensor out = halo_exchange(x, halo, *single);
    REQUIRE(out.shape() == Shape{B, halo + L, C});
    Tensor seed = Tensor::randn({B, halo + L, C}, gen, 1.0, DType::f64);
    out.backward(seed);
    auto xv = x.to_f64_vector(), ov = out.to_f64_vector(), sv = seed.to_f64_vector(), gv = x.grad().to_f64_vector();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < halo + L; ++t)
        for (int64_t c = 0; c < C; ++c)
          CHECK(ov[at(b, t, c, halo + L, C)] == (t < halo ? 0.0 : xv[at(b, t - halo, c, L, C)]));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < L; ++t)
        for (int64_t c = 0; c < C; ++c) CHECK(gv[at(b, t, c, L, C)] == sv[at(b, t + halo, c, halo + L, C)]);
  }
}
