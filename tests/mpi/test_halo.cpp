// Halo exchange under mpirun (2 and 4 ranks): the exchanged rows and their gradients against an
// index-by-index reference, and the two ops built on it (the short convolution and sliding-window
// attention of a split sequence) against the same op on the whole sequence, output and every
// input gradient, including halos and windows that reach several ranks back.
#include <doctest/doctest.h>

#include <tuple>

#include "framework/parallel/halo.h"
#include "base/error.h"
#include "base/random.h"
#include "gradcheck.h"
#include "sequence_share.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("halo: the exchanged rows are the tokens before this rank's share, their gradients go back") {
  Communicator& w = world();
  const int S = w.size(), r = w.rank();
  const int64_t B = 2, L = 3, C = 2, T = L * S;
  for (int64_t halo : {int64_t{0}, int64_t{1}, L, L + 2, 3 * L + 1, 5 * L}) {
    CAPTURE(halo);
    Generator gen(5);
    Tensor x = Tensor::randn({B, T, C}, gen, 1.0, DType::f64);
    // Every rank's seed gradient for its [B, halo + L, C] output, the same tensors on all ranks.
    std::vector<Tensor> seeds;
    for (int s = 0; s < S; ++s) seeds.push_back(Tensor::randn({B, halo + L, C}, gen, 1.0, DType::f64));
    Tensor mine = time_slice(x, r * L, L).requires_grad_();
    Tensor out = halo_exchange(mine, halo, w);
    REQUIRE(out.shape() == Shape{B, halo + L, C});
    auto xv = x.to_f64_vector(), ov = out.to_f64_vector();
    std::vector<double> want_out(ov.size(), 0.0), want_grad(static_cast<size_t>(B * L * C), 0.0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < halo + L; ++i)
        for (int64_t c = 0; c < C; ++c) {
          const int64_t p = r * L - halo + i;  // the global position of output row i
          if (p >= 0) want_out[static_cast<size_t>((b * (halo + L) + i) * C + c)] = xv[static_cast<size_t>((b * T + p) * C + c)];
        }
    // d out_s[i] / d x[p] = 1 where rank s's row i is position p: collect what lands in my share.
    for (int s = 0; s < S; ++s) {
      auto sv = seeds[static_cast<size_t>(s)].to_f64_vector();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < halo + L; ++i) {
          const int64_t p = s * L - halo + i;
          if (p < r * L || p >= (r + 1) * L) continue;
          for (int64_t c = 0; c < C; ++c)
            want_grad[static_cast<size_t>((b * L + p - r * L) * C + c)] += sv[static_cast<size_t>((b * (halo + L) + i) * C + c)];
        }
    }
    CHECK(ov == want_out);
    out.backward(seeds[static_cast<size_t>(r)]);
    CHECK(rel_error(mine.grad().to_f64_vector(), want_grad) < 1e-15);
  }
}

TEST_CASE("halo: bad halos and ranges are refused with the values") {
  Communicator& w = world();
  Tensor x = Tensor::zeros({1, 4, 2}, DType::f32);
  CHECK_THROWS_WITH_AS(halo_exchange(x, -1, w), doctest::Contains("halo = -1 must be >= 0"), Error);
  CHECK_THROWS_WITH_AS(narrow_time(x, 2, 5), doctest::Contains("rows [2, 5) are outside the 4 time steps"), Error);
}

namespace {

void check_short_conv(DType dtype, int64_t L, int64_t k, double tol) {
  Communicator& w = world();
  const int S = w.size(), r = w.rank();
  const int64_t B = 2, C = 3, T = L * S;
  Generator gen(11);
  Tensor x = Tensor::randn({B, T, C}, gen, 1.0, dtype), weight = Tensor::randn({C, k}, gen, 1.0, dtype),
         bias = Tensor::randn({C}, gen, 1.0, dtype), seed = Tensor::randn({B, T, C}, gen, 1.0, dtype);
  std::vector<Tensor> full = {x.clone().requires_grad_(), weight.clone().requires_grad_(), bias.clone().requires_grad_()};
  Tensor y_full = short_conv(full[0], full[1], full[2]);
  y_full.backward(seed);
  std::vector<Tensor> mine = {time_slice(x, r * L, L).requires_grad_(), weight.clone().requires_grad_(),
                              bias.clone().requires_grad_()};
  Tensor y = short_conv_sp(mine[0], mine[1], mine[2], w);
  CHECK(rel_error(y, time_slice(y_full, r * L, L)) < tol);
  y.backward(time_slice(seed, r * L, L));
  CHECK(rel_error(mine[0].grad(), time_slice(full[0].grad(), r * L, L)) < tol);
  // The parameters are replicated: each rank holds its tokens' part of their gradient.
  for (int i : {1, 2}) {
    CAPTURE(i);
    w.all_reduce_sum(mine[static_cast<size_t>(i)].grad());
    CHECK(rel_error(mine[static_cast<size_t>(i)].grad(), full[static_cast<size_t>(i)].grad()) < tol);
  }
}

}  // namespace

TEST_CASE("halo: the sequence-parallel short convolution equals the whole sequence") {
  // k - 1 = 0 (no halo), within one share, exactly one share, and several shares back (L = 3, k = 9).
  for (auto [L, k] : {std::pair<int64_t, int64_t>{5, 1}, {5, 2}, {5, 4}, {4, 5}, {3, 9}}) {
    CAPTURE(L);
    CAPTURE(k);
    check_short_conv(DType::f64, L, k, 1e-12);
    check_short_conv(DType::f32, L, k, 1e-6);
  }
}

TEST_CASE("halo: sequence-parallel sliding-window attention equals the whole sequence") {
  // Windows 0 (the diagonal only), inside a share, one share, and wider than one and three shares.
  for (int64_t window : {0, 1, 5, 6, 9, 20}) {
    CAPTURE(window);
    check_attention_sp(DType::f64, 6, window, 1e-12);
    check_attention_sp(DType::f32, 6, window, 1e-6);
  }
}
