// FlashAttention-2 style attention on the CPU: online softmax over tiles, O(T) extra memory.
// Every output tile is computed by one task with a fixed loop order, so results do not depend on
// the thread count or schedule (dynamic scheduling only balances the causal triangle).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_common.h"

namespace eat::cpu {

using namespace attention_detail;

namespace {

constexpr int64_t Bq = kAttentionTileQ, Bk = kAttentionTileK;

int64_t tiles(int64_t n, int64_t size) { return (n + size - 1) / size; }

// Key tiles a query tile [i0, i1) can see, as [first, last).
std::pair<int64_t, int64_t> key_tiles_for(const AttentionShape& s, int64_t i0, int64_t i1) {
  if (!s.causal) return {0, tiles(s.T, Bk)};
  int64_t lo = s.window_left >= 0 ? std::max<int64_t>(0, i0 - s.window_left) : 0;
  return {lo / Bk, tiles(i1, Bk)};
}

// Query tiles that can see key tile [j0, j1), as [first, last).
std::pair<int64_t, int64_t> query_tiles_for(const AttentionShape& s, int64_t j0, int64_t j1) {
  if (!s.causal) return {0, tiles(s.T, Bq)};
  int64_t hi = s.window_left >= 0 ? std::min<int64_t>(s.T, j1 - 1 + s.window_left + 1) : s.T;
  return {j0 / Bq, tiles(hi, Bq)};
}

// Whether every (query, key) pair of the tile is visible: then no per-element masking.
bool tile_fully_visible(const AttentionShape& s, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  if (!s.causal) return true;
  return j1 - 1 <= i0 && (s.window_left < 0 || j0 >= i1 - 1 - s.window_left);
}

// Probabilities P = exp(S - L) of one tile given each row's log-sum-exp, masked entries 0. The
// exponentials run through Eigen's vectorised exp.
template <typename T>
void tile_probabilities(const AttentionShape& s, Mat<T>& S, const T* lse_rows, int64_t i0, int64_t j0, bool full) {
  using Col = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  S = (S.colwise() - Eigen::Map<const Col>(lse_rows, S.rows())).array().exp().matrix();
  if (full) return;
  for (int64_t r = 0; r < S.rows(); ++r)
    for (int64_t c = 0; c < S.cols(); ++c)
      if (!allowed(s, i0 + r, j0 + c)) S(r, c) = T(0);
}

// For the backward of tile (query rows [i0, i1), key columns [j0, j1)) of head (b, h): the
// recomputed probabilities P and the score gradient dS = P * (dO V^T - D), D = rowsum(dO * O).
template <typename T>
void tile_score_gradient(const AttentionShape& s, const T* q, const T* k, const T* v, const T* dout, const T* lse,
                         const T* D, int64_t b, int64_t h, int64_t i0, int64_t i1, int64_t j0, int64_t j1, Mat<T>& P,
                         Mat<T>& dS) {
  const int64_t bh = b * s.H + h, rows = i1 - i0, cols = j1 - j0;
  P.noalias() = T(s.scale) * (head_rows(q, s, b, h, i0, rows, s.d) * head_rows(k, s, b, h, j0, cols, s.d).transpose());
  tile_probabilities(s, P, lse + bh * s.T + i0, i0, j0, tile_fully_visible(s, i0, i1, j0, j1));
  dS.noalias() = head_rows(dout, s, b, h, i0, rows, s.e) * head_rows(v, s, b, h, j0, cols, s.e).transpose();
  for (int64_t r = 0; r < rows; ++r) {
    const T Dr = D[bh * s.T + i0 + r];
    for (int64_t c = 0; c < cols; ++c) dS(r, c) = P(r, c) * (dS(r, c) - Dr);
  }
}

}  // namespace

template <typename T>
void attention_tiled_forward(const AttentionShape& s, const T* q, const T* k, const T* v, T* o, T* lse) {
  const int64_t nq = tiles(s.T, Bq);
  const T neg_inf = -std::numeric_limits<T>::infinity();
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < s.B * s.H * nq; ++task) {
    const int64_t bh = task / nq, b = bh / s.H, h = bh % s.H;
    const int64_t i0 = (task % nq) * Bq, i1 = std::min(s.T, i0 + Bq), rows = i1 - i0;
    auto Q = head_rows(q, s, b, h, i0, rows, s.d);
    using Col = Eigen::Matrix<T, Eigen::Dynamic, 1>;
    Mat<T> acc = Mat<T>::Zero(rows, s.e), S;
    std::vector<T> m(static_cast<size_t>(rows), neg_inf), l(static_cast<size_t>(rows), T(0));
    auto [jt0, jt1] = key_tiles_for(s, i0, i1);
    for (int64_t jt = jt0; jt < jt1; ++jt) {
      const int64_t j0 = jt * Bk, j1 = std::min(s.T, j0 + Bk), cols = j1 - j0;
      S.noalias() = T(s.scale) * (Q * head_rows(k, s, b, h, j0, cols, s.d).transpose());
      if (!tile_fully_visible(s, i0, i1, j0, j1))
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < cols; ++c)
            if (!allowed(s, i0 + r, j0 + c)) S(r, c) = neg_inf;
      // Online softmax: rescale what the row has so far to the new running maximum.
      Col row_max = S.rowwise().maxCoeff(), shift(rows), correction(rows);
      for (int64_t r = 0; r < rows; ++r) {
        const T m_new = std::max(m[r], row_max[r]);
        // A row with nothing visible yet: subtracting 0 keeps its entries at exp(-inf) = 0.
        shift[r] = m_new == neg_inf ? T(0) : m_new;
        correction[r] = m_new == neg_inf ? T(1) : std::exp(m[r] - m_new);  // exp(-inf) = 0 on the first visible tile
        m[r] = m_new;
      }
      S = (S.colwise() - shift).array().exp().matrix();
      Col sums = S.rowwise().sum();
      for (int64_t r = 0; r < rows; ++r) {
        l[r] = l[r] * correction[r] + sums[r];
        acc.row(r) *= correction[r];
      }
      acc.noalias() += S * head_rows(v, s, b, h, j0, cols, s.e);
    }
    auto O = head_rows(o, s, b, h, i0, rows, s.e);
    T* L = lse + bh * s.T + i0;
    for (int64_t r = 0; r < rows; ++r) {
      O.row(r) = acc.row(r) / l[r];
      L[r] = m[r] + std::log(l[r]);
    }
  }
}

template <typename T>
void attention_tiled_backward(const AttentionShape& s, const T* q, const T* k, const T* v, const T* o, const T* lse,
                              const T* dout, T* dq, T* dk, T* dv) {
  const int64_t nq = tiles(s.T, Bq), nk = tiles(s.T, Bk);
  // D = rowsum(dO * O): the softmax backward's per-row correction, [B, H, T].
  std::vector<T> D(static_cast<size_t>(s.B * s.H * s.T));
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    auto dO = head_rows(dout, s, b, h, 0, s.T, s.e);
    auto O = head_rows(o, s, b, h, 0, s.T, s.e);
    for (int64_t t = 0; t < s.T; ++t) D[static_cast<size_t>(bh * s.T + t)] = dO.row(t).dot(O.row(t));
  }

  // Pass 1: dK and dV, one task per key tile, walking its query tiles in order.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < s.B * s.H * nk; ++task) {
    const int64_t bh = task / nk, b = bh / s.H, h = bh % s.H;
    const int64_t j0 = (task % nk) * Bk, j1 = std::min(s.T, j0 + Bk), cols = j1 - j0;
    Mat<T> dK = Mat<T>::Zero(cols, s.d), dV = Mat<T>::Zero(cols, s.e), P, dS;
    auto [it0, it1] = query_tiles_for(s, j0, j1);
    for (int64_t it = it0; it < it1; ++it) {
      const int64_t i0 = it * Bq, i1 = std::min(s.T, i0 + Bq), rows = i1 - i0;
      tile_score_gradient(s, q, k, v, dout, lse, D.data(), b, h, i0, i1, j0, j1, P, dS);
      dV.noalias() += P.transpose() * head_rows(dout, s, b, h, i0, rows, s.e);
      dK.noalias() += T(s.scale) * (dS.transpose() * head_rows(q, s, b, h, i0, rows, s.d));
    }
    head_rows(dk, s, b, h, j0, cols, s.d) = dK;
    head_rows(dv, s, b, h, j0, cols, s.e) = dV;
  }

  // Pass 2: dQ, one task per query tile, walking its key tiles in order.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < s.B * s.H * nq; ++task) {
    const int64_t bh = task / nq, b = bh / s.H, h = bh % s.H;
    const int64_t i0 = (task % nq) * Bq, i1 = std::min(s.T, i0 + Bq), rows = i1 - i0;
    Mat<T> dQ = Mat<T>::Zero(rows, s.d), P, dS;
    auto [jt0, jt1] = key_tiles_for(s, i0, i1);
    for (int64_t jt = jt0; jt < jt1; ++jt) {
      const int64_t j0 = jt * Bk, j1 = std::min(s.T, j0 + Bk), cols = j1 - j0;
      tile_score_gradient(s, q, k, v, dout, lse, D.data(), b, h, i0, i1, j0, j1, P, dS);
      dQ.noalias() += T(s.scale) * (dS * head_rows(k, s, b, h, j0, cols, s.d));
    }
    head_rows(dq, s, b, h, i0, rows, s.d) = dQ;
  }
}

#define EAT_INSTANTIATE(T)                                                                                   \
  template void attention_tiled_forward<T>(const AttentionShape&, const T*, const T*, const T*, T*, T*);    \
  template void attention_tiled_backward<T>(const AttentionShape&, const T*, const T*, const T*, const T*, \
                                            const T*, const T*, T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
