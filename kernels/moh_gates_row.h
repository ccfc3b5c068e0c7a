#pragma once
// One token row of moh_gates (kernels/moh_gates.h), written once for the CPU kernel (double
// arithmetic) and the CUDA kernel (f32 arithmetic, one thread per row). `Num` says how the row's
// storage type T becomes the arithmetic type and back:
//   struct Num { using A = double; static A load(T); static T store(A); static A exp(A); };
// With q = softmax(shared_logits), p = softmax(routed_logits), P = sum_{j in sel} p_j and
// a = 2 softmax(mix_logits) = 2 m:
//   gate_i       = a_0 h_s q_i                    (shared_scale q_i)
//   gate_{h_s+i} = a_1 K p_i / P for i in sel     (routed_scale share_i; a_1 = 1 when h_s = 0)
// and backward, for upstream dg (shared part dg_s, routed part dg_r) and dp_in on routed_probs:
//   c = sum_{j in sel} dg_r,j share_j,   dp_i = [i in sel] routed_scale (dg_r,i - c) / P + dp_in_i,
//   d routed_logits = p (dp - <p, dp>),
//   s = <q, dg_s>,   d shared_logits = shared_scale q (dg_s - s),
//   da = [h_s s, K c],   d mix_logits = m (2 da - <m, 2 da>).
// P >= K / R > 0 (the top K of R probabilities hold at least K / R of the mass), so the
// renormalisation needs no epsilon.
#include <cstdint>

#include "kernels/moh_gates.h"

#if defined(__CUDACC__)
#define EAT_MOH_HD __host__ __device__
#else
#define EAT_MOH_HD
#endif

namespace eat::moh {

// The top K of x[0, R) as a bit mask, ties to the lower index: entry i is selected when fewer
// than K entries beat it (a greater value, or an equal one at a lower index). Selecting on the
// logits rather than on p gives the same set (softmax is monotone) without the ties that rounding
// two different logits to one probability would make.
template <typename Num, typename T>
EAT_MOH_HD uint64_t top_k_mask(const T* x, int64_t R, int64_t K) {
  uint64_t mask = 0;
  for (int64_t i = 0; i < R; ++i) {
    const auto xi = Num::load(x[i]);
    int64_t beaten_by = 0;
    for (int64_t j = 0; j < R && beaten_by < K; ++j) {
      const auto xj = Num::load(x[j]);
      beaten_by += (xj > xi || (xj == xi && j < i)) ? 1 : 0;
    }
    if (beaten_by < K) mask |= uint64_t{1} << i;
  }
  return mask;
}

// softmax(x[0, n))_i = exp(x_i - max) / sum, from the row's max and 1 / sum.
template <typename Num, typename T>
struct RowSoftmax {
  using A = typename Num::A;
  const T* x;
  A max, inv_sum;

  EAT_MOH_HD RowSoftmax(const T* row, int64_t n) : x(row), max(Num::load(row[0])), inv_sum(0) {
    for (int64_t j = 1; j < n; ++j) max = Num::load(x[j]) > max ? Num::load(x[j]) : max;
    A sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += Num::exp(Num::load(x[j]) - max);
    inv_sum = A(1) / sum;
  }
  EAT_MOH_HD A operator[](int64_t i) const { return Num::exp(Num::load(x[i]) - max) * inv_sum; }
};

// The row's softmaxes, selection and gate scales; forward() and backward() write its outputs.
template <typename Num, typename T>
struct GateRow {
  using A = typename Num::A;
  MohGatesShape s;
  int64_t n;           // the row
  uint64_t sel;        // bit i: routed head i selected
  A p[kMohMaxRouted];  // routed probabilities, computed once (exp dominates the row's cost)
  A mass = 0;          // P
  A routed_scale;      // a_1 K
  A shared_scale = 0;  // a_0 h_s
  A m0 = 0, m1 = 0;    // softmax(mix_logits)

  EAT_MOH_HD GateRow(const MohGatesShape& shape, int64_t row, const T* routed_logits, const T* mix_logits)
      : s(shape), n(row), sel(top_k_mask<Num>(routed_logits + row * shape.R, shape.R, shape.K)) {
    const RowSoftmax<Num, T> routed(routed_logits + row * s.R, s.R);
    for (int64_t i = 0; i < s.R; ++i) p[i] = routed[i];
    for (int64_t i = 0; i < s.R; ++i)
      if (selected(i)) mass += p[i];
    A a1 = 1;
    if (s.h_s > 0) {
      const RowSoftmax<Num, T> m(mix_logits + row * 2, 2);
      m0 = m[0];
      m1 = m[1];
      shared_scale = 2 * m0 * A(s.h_s);
      a1 = 2 * m1;
    }
    routed_scale = a1 * A(s.K);
  }

  EAT_MOH_HD bool selected(int64_t i) const { return (sel >> i) & 1u; }
  // p_i / P by a division, so that with K = 1 the one share is exactly 1 and its gradient through
  // the routed logits exactly 0 (a product with 1 / P would leave rounding noise there).
  EAT_MOH_HD A share(int64_t i) const { return p[i] / mass; }

  EAT_MOH_HD void forward(const T* shared_logits, T* gates, T* routed_probs, T* selected_out) const {
    T* g = gates + n * (s.h_s + s.R);
    if (s.h_s > 0) {
      const RowSoftmax<Num, T> q(shared_logits + n * s.h_s, s.h_s);
      for (int64_t i = 0; i < s.h_s; ++i) g[i] = Num::store(shared_scale * q[i]);
    }
    for (int64_t i = 0; i < s.R; ++i) {
      g[s.h_s + i] = Num::store(selected(i) ? routed_scale * share(i) : A(0));
      routed_probs[n * s.R + i] = Num::store(p[i]);
      selected_out[n * s.R + i] = Num::store(selected(i) ? A(1) : A(0));
    }
  }

  EAT_MOH_HD void backward(const T* shared_logits, const T* dgates, const T* drouted_probs, T* dshared,
                           T* drouted, T* dmix) const {
    const T* dg = dgates ? dgates + n * (s.h_s + s.R) : nullptr;
    const T* dg_r = dg ? dg + s.h_s : nullptr;
    const T* dp_in = drouted_probs ? drouted_probs + n * s.R : nullptr;
    A c = 0;
    if (dg_r)
      for (int64_t j = 0; j < s.R; ++j)
        if (selected(j)) c += Num::load(dg_r[j]) * share(j);
    auto dp = [&](int64_t i) {
      const A d = dg_r && selected(i) ? routed_scale * (Num::load(dg_r[i]) - c) / mass : A(0);
      return dp_in ? d + Num::load(dp_in[i]) : d;
    };
    if (drouted) {
      A dot = 0;
      for (int64_t i = 0; i < s.R; ++i) dot += p[i] * dp(i);
      for (int64_t i = 0; i < s.R; ++i) drouted[n * s.R + i] = Num::store(p[i] * (dp(i) - dot));
    }
    if (s.h_s == 0) return;
    const RowSoftmax<Num, T> q(shared_logits + n * s.h_s, s.h_s);
    A sq = 0;
    if (dg)
      for (int64_t j = 0; j < s.h_s; ++j) sq += q[j] * Num::load(dg[j]);
    if (dshared)
      for (int64_t i = 0; i < s.h_s; ++i)
        dshared[n * s.h_s + i] = Num::store(dg ? shared_scale * q[i] * (Num::load(dg[i]) - sq) : A(0));
    if (dmix) {
      const A dm0 = 2 * A(s.h_s) * sq, dm1 = 2 * A(s.K) * c;  // 2 da: the gradient of m
      const A dot = m0 * dm0 + m1 * dm1;
      dmix[n * 2] = Num::store(m0 * (dm0 - dot));
      dmix[n * 2 + 1] = Num::store(m1 * (dm1 - dot));
    }
  }
};

}  // namespace eat::moh
