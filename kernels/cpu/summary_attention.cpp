// Attention over chunk summaries with a private key per query, on the CPU
// (kernels/summary_attention.h). One task per (batch, head), dealt out statically; each walks its
// queries in blocks of kQueryBlock rows. A block's scores against the summaries its last query
// sees are one GEMM (Q K_sum^T), masked per row to the summaries that row sees, and the own key is
// one more logit per row; each row's softmax is taken over the whole row at once (memory
// O(block x C)), and P V_sum is a second GEMM. Work O(T C (d + e)) per head, C the summaries,
// not O(T^2).
// The backward recomputes P from the saved log-sum-exp (FlashAttention-2 style) and accumulates
// dk_sum and dv_sum over the head's query blocks in increasing order inside the head's task, so
// every result is written by one thread in a fixed order: deterministic for any thread count.
#include "kernels/summary_attention.h"

#include <Eigen/Core>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace eat::cpu {

namespace {

constexpr int64_t kQueryBlock = 64;

template <typename T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// One head's rows of the five [B, N, H, width] tensors and their gradients, read and written in
// place (consecutive rows are H * width elements apart). Const pointers give read-only views.
struct HeadRows {
  const HeadShape& s;
  const SummaryAttentionArgs& a;
  int64_t b, h;

  template <typename P>
  static auto map(P base, int64_t offset, int64_t stride, int64_t count, int64_t width) {
    using E = std::remove_pointer_t<P>;
    using M = std::conditional_t<std::is_const_v<E>, const RowMajor<std::remove_const_t<E>>, RowMajor<E>>;
    // (An empty summary tensor may have no storage: its null pointer is not offset.)
    return Eigen::Map<M, Eigen::Unaligned, Eigen::OuterStride<>>(base ? base + offset : base, count, width,
                                                                  Eigen::OuterStride<>(stride));
  }
  // Tokens [t0, t0 + n) of q, k, dq, dk (width d) or v, y, dy, dv (width e).
  template <typename P> auto keys(P base, int64_t t0, int64_t n) const {
    return map(base, ((b * s.T + t0) * s.H + h) * s.d, s.H * s.d, n, s.d);
  }
  template <typename P> auto values(P base, int64_t t0, int64_t n) const {
    return map(base, ((b * s.T + t0) * s.H + h) * s.e, s.H * s.e, n, s.e);
  }
  // Summaries [0, n) of k_sum, dk_sum (width d) or v_sum, dv_sum (width e).
  template <typename P> auto key_sums(P base, int64_t n) const {
    return map(base, (b * a.summaries * s.H + h) * s.d, s.H * s.d, n, s.d);
  }
  template <typename P> auto value_sums(P base, int64_t n) const {
    return map(base, (b * a.summaries * s.H + h) * s.e, s.H * s.e, n, s.e);
  }
};

int64_t work_of(const HeadShape& s, const SummaryAttentionArgs& a) {
  return s.B * s.H * s.T * (a.summaries + 1) * (s.d + s.e);
}

}  // namespace

template <typename T>
void summary_attention_forward(const HeadShape& s, const SummaryAttentionArgs& a, const T* q, const T* k, const T* v,
                               const T* k_sum, const T* v_sum, T* y, RowStat* lse) {
  const T scale = static_cast<T>(a.scale);
  const int64_t heads = s.B * s.H;
#pragma omp parallel if (parallel_worth(work_of(s, a)) && heads > 1)
  {
    RowMajor<T> S, Y;
    std::vector<T> own_p(kQueryBlock), row_sum(kQueryBlock);
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < heads; ++bh) {
      const HeadRows head{s, a, bh / s.H, bh % s.H};
      for (int64_t t0 = 0; t0 < s.T; t0 += kQueryBlock) {
        const int64_t nr = std::min(kQueryBlock, s.T - t0), nc = a.visible(t0 + nr - 1);
        const auto Q = head.keys(q, t0, nr);
        const auto K = head.keys(k, t0, nr);
        const auto V = head.values(v, t0, nr);
        S.resize(nr, nc);
        if (nc > 0) S.noalias() = (Q * head.key_sums(k_sum, nc).transpose()) * scale;
        RowStat* L = lse + bh * s.T + t0;
        for (int64_t r = 0; r < nr; ++r) {
          const int64_t n = a.visible(t0 + r);
          const T own = scale * Q.row(r).dot(K.row(r));
          auto row = S.row(r);
          const T m = n > 0 ? std::max(own, row.head(n).maxCoeff()) : own;
          row.head(n) = (row.head(n).array() - m).exp().matrix();
          row.tail(nc - n).setZero();
          own_p[r] = std::exp(own - m);  // the own key is always seen, so the sum is >= 1
          row_sum[r] = row.head(n).sum() + own_p[r];
          L[r] = static_cast<RowStat>(m) + std::log(static_cast<RowStat>(row_sum[r]));
        }
        auto out = head.values(y, t0, nr);
        if (nc > 0) {
          Y.noalias() = S * head.value_sums(v_sum, nc);
          for (int64_t r = 0; r < nr; ++r) out.row(r) = (Y.row(r) + own_p[r] * V.row(r)) / row_sum[r];
        } else {
          for (int64_t r = 0; r < nr; ++r) out.row(r) = (own_p[r] * V.row(r)) / row_sum[r];  // v_t exactly
        }
      }
    }
  }
}

template <typename T>
void summary_attention_backward(const HeadShape& s, const SummaryAttentionArgs& a, const T* q, const T* k,
                                const T* v, const T* k_sum, const T* v_sum, const T* y, const RowStat* lse,
                                const T* dy, T* dq, T* dk, T* dv, T* dk_sum, T* dv_sum) {
  const T scale = static_cast<T>(a.scale);
  const int64_t heads = s.B * s.H, C = a.summaries;
#pragma omp parallel if (parallel_worth(2 * work_of(s, a)) && heads > 1)
  {
    RowMajor<T> P, dS, dQ;
    std::vector<T> own_ds(kQueryBlock);
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < heads; ++bh) {
      const HeadRows head{s, a, bh / s.H, bh % s.H};
      auto dKs = head.key_sums(dk_sum, C);
      auto dVs = head.value_sums(dv_sum, C);
      dKs.setZero();
      dVs.setZero();
      for (int64_t t0 = 0; t0 < s.T; t0 += kQueryBlock) {
        const int64_t nr = std::min(kQueryBlock, s.T - t0), nc = a.visible(t0 + nr - 1);
        const auto Q = head.keys(q, t0, nr);
        const auto K = head.keys(k, t0, nr);
        const auto V = head.values(v, t0, nr);
        const auto Y = head.values(y, t0, nr);
        const auto dY = head.values(dy, t0, nr);
        auto dK = head.keys(dk, t0, nr);
        auto dV = head.values(dv, t0, nr);
        const auto Ks = head.key_sums(k_sum, nc);
        P.resize(nr, nc);
        dS.resize(nr, nc);
        if (nc > 0) {
          P.noalias() = (Q * Ks.transpose()) * scale;
          dS.noalias() = dY * head.value_sums(v_sum, nc).transpose();
        }
        const RowStat* L = lse + bh * s.T + t0;
        for (int64_t r = 0; r < nr; ++r) {
          const int64_t n = a.visible(t0 + r);
          const T lse_r = static_cast<T>(L[r]);
          const T D = dY.row(r).dot(Y.row(r));  // sum over keys of p dp: the softmax's correction
          auto p = P.row(r);
          auto ds = dS.row(r);
          p.head(n) = (p.head(n).array() - lse_r).exp().matrix();
          ds.head(n) = (p.head(n).array() * (ds.head(n).array() - D)).matrix();
          p.tail(nc - n).setZero();
          ds.tail(nc - n).setZero();
          const T own_p = std::exp(scale * Q.row(r).dot(K.row(r)) - lse_r);
          own_ds[r] = own_p * (dY.row(r).dot(V.row(r)) - D);
          dK.row(r) = (scale * own_ds[r]) * Q.row(r);
          dV.row(r) = own_p * dY.row(r);
        }
        auto dQ_out = head.keys(dq, t0, nr);
        if (nc > 0) {
          dQ.noalias() = dS * Ks;
          for (int64_t r = 0; r < nr; ++r) dQ_out.row(r) = scale * (dQ.row(r) + own_ds[r] * K.row(r));
          dKs.topRows(nc).noalias() += (dS.transpose() * Q) * scale;
          dVs.topRows(nc).noalias() += P.transpose() * dY;
        } else {
          for (int64_t r = 0; r < nr; ++r) dQ_out.row(r) = (scale * own_ds[r]) * K.row(r);
        }
      }
    }
  }
}

template void summary_attention_forward<float>(const HeadShape&, const SummaryAttentionArgs&, const float*,
                                               const float*, const float*, const float*, const float*, float*,
                                               RowStat*);
template void summary_attention_forward<double>(const HeadShape&, const SummaryAttentionArgs&, const double*,
                                                const double*, const double*, const double*, const double*, double*,
                                                RowStat*);
template void summary_attention_backward<float>(const HeadShape&, const SummaryAttentionArgs&, const float*,
                                                const float*, const float*, const float*, const float*, const float*,
                                                const RowStat*, const float*, float*, float*, float*, float*, float*);
template void summary_attention_backward<double>(const HeadShape&, const SummaryAttentionArgs&, const double*,
                                                 const double*, const double*, const double*, const double*,
                                                 const double*, const RowStat*, const double*, double*, double*,
                                                 double*, double*, double*);

}  // namespace eat::cpu
