#include "kernels/cpu/attention_tiled.h"
#include "kernels/cpu/parallel.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

namespace eat::cpu {

namespace {

constexpr int64_t Br = kAttentionQueryTile;
constexpr int64_t Bc = kAttentionKeyTile;

template <typename T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// A run of one head's rows inside a [B, T, H, width] tensor, read in place: consecutive tokens
// are H*width elements apart.
template <typename T>
using ConstHeadRows = Eigen::Map<const RowMajor<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using HeadRows = Eigen::Map<RowMajor<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

int64_t tiles(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }

// Tokens [first, first + count) of head (b, h): query-side tensors (q, out, dout, dq; seq rows)
// and key-side ones (k, v, dk, dv; key_len() rows, more than the queries under sequence
// parallelism). Const pointers give read-only views, others writable ones.
struct Head {
  const AttentionDims& dims;
  int64_t b, h;

  template <typename P>
  auto rows(P base, int64_t offset, int64_t width, int64_t first, int64_t count) const {
    using T = std::remove_const_t<std::remove_pointer_t<P>>;
    using Map = std::conditional_t<std::is_const_v<std::remove_pointer_t<P>>, ConstHeadRows<T>, HeadRows<T>>;
    const int64_t stride = dims.heads * width;
    return Map(base + offset + first * stride, count, width, Eigen::OuterStride<>(stride));
  }
  template <typename P> auto qk(P base, int64_t first, int64_t count) const {
    return rows(base, dims.qk_offset(b, h), dims.qk_dim, first, count);
  }
  template <typename P> auto vv(P base, int64_t first, int64_t count) const {
    return rows(base, dims.v_offset(b, h), dims.v_dim, first, count);
  }
  template <typename P> auto kk(P base, int64_t first, int64_t count) const {
    return rows(base, dims.key_offset(b, h), dims.qk_dim, first, count);
  }
  template <typename P> auto kv(P base, int64_t first, int64_t count) const {
    return rows(base, dims.value_offset(b, h), dims.v_dim, first, count);
  }
};

// The part of a key tile [k0, k0 + nc) that query t attends, as columns [lo, hi) of the tile
// (empty when lo >= hi). A tile wholly inside the band needs no per-row mask.
struct TileBand {
  const AttentionDims& dims;
  int64_t q0, nr, k0, nc;
  bool full() const { return k0 >= dims.first_key(q0 + nr - 1) && k0 + nc - 1 <= dims.last_key(q0); }
  int64_t lo(int64_t t) const { return std::clamp<int64_t>(dims.first_key(t) - k0, 0, nc); }
  int64_t hi(int64_t t) const { return std::clamp<int64_t>(dims.last_key(t) + 1 - k0, 0, nc); }
};

// Key tiles that query tile [q0, q0 + nr) must visit: [first, end) in units of Bc. Every one of
// them holds at least one attended pair (the band is contiguous and slides by one per query).
int64_t first_key_tile(const AttentionDims& dims, int64_t q0) { return dims.first_key(q0) / Bc; }
int64_t end_key_tile(const AttentionDims& dims, int64_t q0, int64_t nr) { return dims.last_key(q0 + nr - 1) / Bc + 1; }
// Query tiles that see key tile [k0, k0 + nc), likewise.
int64_t first_query_tile(const AttentionDims& dims, int64_t k0) { return dims.first_query(k0) / Br; }
int64_t end_query_tile(const AttentionDims& dims, int64_t k0, int64_t nc) {
  return dims.last_query(k0 + nc - 1) / Br + 1;
}

// The backward's inner step for query tile [q0, q0 + nr) and key tile [k0, k0 + nc): rebuilds
// P = exp(scale * Q K^T - L) inside the band (0 outside) into P_buf, and leaves
// dS = P * (dO V^T - D) in dS_buf, both in their top-left nr x nc corners.
template <typename T>
void tile_probabilities_and_dscores(const AttentionDims& dims, const TileBand& band, const ConstHeadRows<T>& Q,
                                    const ConstHeadRows<T>& K, const ConstHeadRows<T>& V, const ConstHeadRows<T>& dO,
                                    const T* L, const T* D, RowMajor<T>& P_buf, RowMajor<T>& dS_buf) {
  const int64_t nr = band.nr, nc = band.nc;
  const T scale = static_cast<T>(dims.scale);
  const bool full = band.full();
  auto P = P_buf.topLeftCorner(nr, nc);
  auto dS = dS_buf.topLeftCorner(nr, nc);
  P.noalias() = Q * K.transpose();
  dS.noalias() = dO * V.transpose();
  for (int64_t r = 0; r < nr; ++r) {
    const int64_t t = band.q0 + r;
    const int64_t lo = full ? 0 : band.lo(t), hi = full ? nc : band.hi(t);
    auto p = P.row(r);
    auto g = dS.row(r);
    if (lo >= hi) {
      p.setZero();
      g.setZero();
      continue;
    }
    auto ps = p.segment(lo, hi - lo);
    auto gs = g.segment(lo, hi - lo);
    ps = (ps.array() * scale - L[r]).exp().matrix();
    gs = (ps.array() * (gs.array() - D[r])).matrix();
    p.head(lo).setZero();
    p.tail(nc - hi).setZero();
    g.head(lo).setZero();
    g.tail(nc - hi).setZero();
  }
}

}  // namespace

template <typename T>
void attention_tiled_forward(const T* q, const T* k, const T* v, T* out, T* lse, const AttentionDims& dims) {
  const int64_t n = dims.seq, nk = dims.key_len(), n_qt = tiles(n, Br), tasks = dims.batch * dims.heads * n_qt;
  const T scale = static_cast<T>(dims.scale);
  const T neg_inf = -std::numeric_limits<T>::infinity();
  // One task per (batch, head, query tile); each task owns its output rows outright. Under the
  // causal mask later query tiles visit more key tiles, so tasks are dealt out round-robin
  // (static, 1) to keep threads level. Which thread runs a task never changes its arithmetic:
  // Eigen runs the tile products single-threaded inside a parallel region, so results do not
  // depend on the thread count either.
#pragma omp parallel if(parallel_worth(dims.batch * dims.heads * dims.seq * dims.key_len()))
  {
    RowMajor<T> S(Br, Bc), acc(Br, dims.v_dim);
    T row_max[Br], row_sum[Br];
#pragma omp for schedule(static, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t qt = task % n_qt, bh = task / n_qt;
      const Head head{dims, bh / dims.heads, bh % dims.heads};
      const int64_t q0 = qt * Br, nr = std::min(Br, n - q0);
      const auto Q = head.qk(q, q0, nr);
      auto A = acc.topRows(nr);
      A.setZero();
      std::fill(row_max, row_max + nr, neg_inf);
      std::fill(row_sum, row_sum + nr, T(0));

      for (int64_t kt = first_key_tile(dims, q0); kt < end_key_tile(dims, q0, nr); ++kt) {
        const int64_t k0 = kt * Bc, nc = std::min(Bc, nk - k0);
        const TileBand band{dims, q0, nr, k0, nc};
        const bool full = band.full();
        auto s = S.topLeftCorner(nr, nc);
        s.noalias() = Q * head.kk(k, k0, nc).transpose();
        // Online softmax: fold this tile into each row's running max and sum, rescaling what was
        // accumulated so far when the max grows.
        for (int64_t r = 0; r < nr; ++r) {
          const int64_t t = q0 + r;
          const int64_t lo = full ? 0 : band.lo(t), hi = full ? nc : band.hi(t);
          auto row = s.row(r);
          if (lo >= hi) {  // this row sees no key of this tile
            row.setZero();
            continue;
          }
          auto seg = row.segment(lo, hi - lo);
          seg *= scale;
          const T new_max = std::max(row_max[r], seg.maxCoeff());
          const T rescale = std::exp(row_max[r] - new_max);  // exp(-inf) = 0 on the row's first tile
          seg = (seg.array() - new_max).exp().matrix();
          row.head(lo).setZero();
          row.tail(nc - hi).setZero();
          row_sum[r] = row_sum[r] * rescale + seg.sum();
          if (rescale != T(1)) A.row(r) *= rescale;
          row_max[r] = new_max;
        }
        A.noalias() += s * head.kv(v, k0, nc);
      }

      // Every query attends at least its own key (or all keys), so row_sum > 0.
      auto O = head.vv(out, q0, nr);
      T* L = lse + bh * n + q0;
      for (int64_t r = 0; r < nr; ++r) {
        O.row(r) = A.row(r) / row_sum[r];
        L[r] = row_max[r] + std::log(row_sum[r]);
      }
    }
  }
}

template <typename T>
void attention_tiled_backward(const T* q, const T* k, const T* v, const T* out, const T* lse, const T* dout, T* dq,
                              T* dk, T* dv, const AttentionDims& dims) {
  const int64_t n = dims.seq, nk = dims.key_len(), bh_count = dims.batch * dims.heads;
  const int64_t n_qt = tiles(n, Br), n_kt = tiles(nk, Bc);
  const T scale = static_cast<T>(dims.scale);

  // D[b, h, t] = dO_t . O_t (= sum_j P_tj dP_tj): the softmax backward's per-row correction.
  std::vector<T> D(static_cast<size_t>(bh_count * n));
#pragma omp parallel for schedule(static) if(parallel_worth(dims.batch * dims.heads * dims.seq * dims.key_len()))
  for (int64_t row = 0; row < bh_count * n; ++row) {
    const int64_t bh = row / n, t = row % n;
    const Head head{dims, bh / dims.heads, bh % dims.heads};
    D[static_cast<size_t>(row)] = head.vv(dout, t, 1).row(0).dot(head.vv(out, t, 1).row(0));
  }

  // Pass 1, dK and dV: one task per (batch, head, key tile), which walks its query tiles in
  // increasing order; every dK/dV row is written by exactly one task.
  if (dk || dv) {
    const int64_t tasks = bh_count * n_kt;
#pragma omp parallel if(parallel_worth(dims.batch * dims.heads * dims.seq * dims.key_len()))
    {
      RowMajor<T> P_buf(Br, Bc), dS_buf(Br, Bc), dK_acc(Bc, dims.qk_dim), dV_acc(Bc, dims.v_dim);
#pragma omp for schedule(static, 1)
      for (int64_t task = 0; task < tasks; ++task) {
        const int64_t kt = task % n_kt, bh = task / n_kt;
        const Head head{dims, bh / dims.heads, bh % dims.heads};
        const int64_t k0 = kt * Bc, nc = std::min(Bc, nk - k0);
        const auto K = head.kk(k, k0, nc);
        const auto V = head.kv(v, k0, nc);
        auto dKa = dK_acc.topRows(nc);
        auto dVa = dV_acc.topRows(nc);
        dKa.setZero();
        dVa.setZero();
        for (int64_t qt = first_query_tile(dims, k0); qt < end_query_tile(dims, k0, nc); ++qt) {
          const int64_t q0 = qt * Br, nr = std::min(Br, n - q0);
          const auto Q = head.qk(q, q0, nr);
          const auto dO = head.vv(dout, q0, nr);
          tile_probabilities_and_dscores<T>(dims, TileBand{dims, q0, nr, k0, nc}, Q, K, V, dO, lse + bh * n + q0,
                                            D.data() + bh * n + q0, P_buf, dS_buf);
          dVa.noalias() += P_buf.topLeftCorner(nr, nc).transpose() * dO;
          dKa.noalias() += dS_buf.topLeftCorner(nr, nc).transpose() * Q;
        }
        if (dv) head.kv(dv, k0, nc) = dVa;
        if (dk) head.kk(dk, k0, nc) = dKa * scale;
      }
    }
  }

  // Pass 2, dQ: one task per (batch, head, query tile), walking its key tiles in increasing order.
  if (dq) {
    const int64_t tasks = bh_count * n_qt;
#pragma omp parallel if(parallel_worth(dims.batch * dims.heads * dims.seq * dims.key_len()))
    {
      RowMajor<T> P_buf(Br, Bc), dS_buf(Br, Bc), dQ_acc(Br, dims.qk_dim);
#pragma omp for schedule(static, 1)
      for (int64_t task = 0; task < tasks; ++task) {
        const int64_t qt = task % n_qt, bh = task / n_qt;
        const Head head{dims, bh / dims.heads, bh % dims.heads};
        const int64_t q0 = qt * Br, nr = std::min(Br, n - q0);
        const auto Q = head.qk(q, q0, nr);
        const auto dO = head.vv(dout, q0, nr);
        auto dQa = dQ_acc.topRows(nr);
        dQa.setZero();
        for (int64_t kt = first_key_tile(dims, q0); kt < end_key_tile(dims, q0, nr); ++kt) {
          const int64_t k0 = kt * Bc, nc = std::min(Bc, nk - k0);
          const auto K = head.kk(k, k0, nc);
          tile_probabilities_and_dscores<T>(dims, TileBand{dims, q0, nr, k0, nc}, Q, K, head.kv(v, k0, nc), dO,
                                            lse + bh * n + q0, D.data() + bh * n + q0, P_buf, dS_buf);
          dQa.noalias() += dS_buf.topLeftCorner(nr, nc) * K;
        }
        head.qk(dq, q0, nr) = dQa * scale;
      }
    }
  }
}

#define EAT_INSTANTIATE(T)                                                                                     \
  template void attention_tiled_forward<T>(const T*, const T*, const T*, T*, T*, const AttentionDims&);        \
  template void attention_tiled_backward<T>(const T*, const T*, const T*, const T*, const T*, const T*, T*, T*, \
                                            T*, const AttentionDims&);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
