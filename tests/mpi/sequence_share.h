#pragma once
// Helpers for comparing a sequence-parallel op with the same op on the whole sequence: every rank
// builds the same whole inputs (same seed) and cuts out its own share.
#include <doctest/doctest.h>

#include "framework/parallel/lasp2.h"
#include "base/random.h"
#include "gradcheck.h"

namespace eat::test {

// Rows [t0, t0 + L) of the time axis of x [B, T, ...], as a fresh tensor.
inline Tensor time_slice(const Tensor& x, int64_t t0, int64_t L) {
  const int64_t B = x.size(0), T = x.size(1), row = x.numel() / (B * T);
  auto v = x.to_f64_vector();
  std::vector<double> out;
  for (int64_t b = 0; b < B; ++b) out.insert(out.end(), v.begin() + (b * T + t0) * row, v.begin() + (b * T + t0 + L) * row);
  Shape s = x.shape();
  s[1] = L;
  return Tensor::from_vector<double>(out, s).to(x.dtype());
}

// attention_sp on this rank's share (the whole sequence is L tokens per rank; window -1 is full
// causal attention, LASP-2H, otherwise the halo exchange) against attention on the whole
// sequence: the output and every input gradient, to relative error tol.
inline void check_attention_sp(DType dtype, int64_t L, int64_t window, double tol) {
  Communicator& w = world();
  const int S = w.size(), r = w.rank();
  const int64_t B = 2, T = L * S, H = 2, d = 4, e = 3;
  Generator gen(9);
  Tensor q = Tensor::randn({B, T, H, d}, gen, 1.0, dtype), k = Tensor::randn({B, T, H, d}, gen, 1.0, dtype),
         v = Tensor::randn({B, T, H, e}, gen, 1.0, dtype), seed = Tensor::randn({B, T, H, e}, gen, 1.0, dtype);
  AttentionOptions opt;
  opt.window_left = window;
  std::vector<Tensor> full = {q.clone().requires_grad_(), k.clone().requires_grad_(), v.clone().requires_grad_()};
  Tensor o_full = attention(full[0], full[1], full[2], opt);
  o_full.backward(seed);
  std::vector<Tensor> mine = {time_slice(q, r * L, L).requires_grad_(), time_slice(k, r * L, L).requires_grad_(),
                              time_slice(v, r * L, L).requires_grad_()};
  Tensor o = attention_sp(mine[0], mine[1], mine[2], w, opt);
  CHECK(rel_error(o, time_slice(o_full, r * L, L)) < tol);
  o.backward(time_slice(seed, r * L, L));
  for (size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    const Tensor ref = time_slice(full[i].grad(), r * L, L);
    if (window == 0 && i < 2) {
      // One key per query: the softmax is constant, so q and k get no gradient. The whole
      // sequence's kernel can leave rounding noise there (2e-16 in f64 on AVX-512) where a share
      // gets exact zeros, and no relative error measures noise against zero: both must be zero
      // to tol absolutely.
      CHECK(rel_error(mine[i].grad(), Tensor::zeros_like(ref)) < tol);
      CHECK(rel_error(ref, Tensor::zeros_like(ref)) < tol);
    } else {
      CHECK(rel_error(mine[i].grad(), ref) < tol);
    }
  }
}

}  // namespace eat::test
