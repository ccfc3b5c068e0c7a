#pragma once
// The steps of the tiled online-softmax attention (FlashAttention-2 style) on the CPU, shared by
// softmax attention (kernels/cpu/attention_tiled.cpp) and MoH's gated attention
// (kernels/cpu/gated_attention.cpp): views of one head's rows read in place, the part of a key
// tile each query row attends, the forward's fold of one key tile into the running softmax, and
// the backward's recomputation of one tile's probabilities and score gradients.
//
// A tile's query rows are either consecutive tokens (q0, q0 + 1, ...) or a list of positions (the
// active queries of gated attention, increasing); either way row r's keys are the contiguous band
// of AttentionDims at its position.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

#include "kernels/attention_band.h"
#include "kernels/cpu/attention_tiled.h"
#include "kernels/cpu/scaled_exp.h"
#include "kernels/cpu/tile_gemm.h"

namespace eat::cpu::attention_tiles {

template <typename T>
using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// A run of one head's rows inside a [B, T, H, width] tensor, read in place: consecutive tokens
// are H*width elements apart.
template <typename T>
using ConstHeadRows = Eigen::Map<const RowMajor<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using HeadRows = Eigen::Map<RowMajor<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

inline int64_t tiles(int64_t n, int64_t tile) { return (n + tile - 1) / tile; }

// Key-side rows of one head transposed (width x rows), so that the score products S = Q K^T and
// dP = dO V^T read them as plain row-major operands: column j is key row j. One per thread;
// `load` fills the columns of the rows a task will visit, once for all its query tiles.
template <typename T>
struct TransposedRows {
  RowMajor<T> t;

  template <typename Rows>
  void load(const Rows& rows, int64_t first, int64_t total) {
    // Padded (tile_gemm.h's kPitchPad): a pitch of a power of two bytes would put a product's
    // rows of t in the same few cache sets.
    if (t.rows() != rows.cols() || t.cols() < total) t.resize(rows.cols(), total + kPitchPad);
    transpose(rows.data(), rows.outerStride(), rows.rows(), rows.cols(), t.data() + first, t.cols());
  }
  auto cols(int64_t first, int64_t count) const { return t.middleCols(first, count); }
};

// Rows of one head copied out at a pitch of their width + kPitchPad: read in place they lie
// heads * width elements apart (256 floats in the tiny recipes), and a tile product that reads 64
// of them as its B operand (P V, dS K, P^T dO, dS^T Q) would find them in a few cache sets. One
// per thread; `load` copies the rows a task will visit, rows(first, count) views them.
template <typename T>
struct PaddedRows {
  RowMajor<T> t;
  int64_t width = 0;

  template <typename Rows>
  void load(const Rows& rows, int64_t first, int64_t total) {
    if (width != rows.cols() || t.rows() < total) {
      width = rows.cols();
      t.resize(total, width + kPitchPad);
    }
    t.block(first, 0, rows.rows(), width) = rows;
  }
  auto rows(int64_t first, int64_t count) const { return t.block(first, 0, count, width); }
};

// Tokens [first, first + count) of head (b, h): query-side tensors (q, out, dout, dq; seq rows)
// and key-side ones (k, v, dk, dv; key_rows() rows: the persistent keys, then the sequence's,
// more than the queries under sequence parallelism; `first` counts rows of k). Const pointers
// give read-only views, others writable ones.
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

// The part of a key tile [k0, k0 + nc) that the tile's query row r attends, as columns
// [lo(r), hi(r)) of the tile (empty when lo >= hi). Row r is query q0 + r, or positions[r] when a
// position list is given. A tile wholly inside every row's band needs no per-row mask. A tile of
// persistent keys (k0: its first row of k) is seen whole by every row.
struct TileBand {
  const AttentionDims& dims;
  int64_t q0, nr, k0, nc;
  const int64_t* positions = nullptr;
  bool persistent = false;

  int64_t query(int64_t r) const { return positions ? positions[r] : q0 + r; }
  bool full() const {
    return persistent || (k0 >= dims.first_key(query(nr - 1)) && k0 + nc - 1 <= dims.last_key(query(0)));
  }
  int64_t lo(int64_t r) const { return persistent ? 0 : std::clamp<int64_t>(dims.first_key(query(r)) - k0, 0, nc); }
  int64_t hi(int64_t r) const {
    return persistent ? nc : std::clamp<int64_t>(dims.last_key(query(r)) + 1 - k0, 0, nc);
  }
};

// The products of a (query rows, keys) pair over the band alone: the masked half of a diagonal tile
// (and what a window cuts off) is not computed, at the granularity of tile_gemm's row blocks.
// hi(r) and lo(r) never decrease with r (the rows' positions increase), so a block of query rows
// attends keys [0, hi(its last row)) and a block of keys is attended by a run of rows.
//
// The keys a block of query rows from row i0 may attend: [0, end).
inline int64_t band_keys_end(const TileBand& band, int64_t i0) {
  return band.full() ? band.nc : band.hi(std::min(band.nr, i0 + kTileRows) - 1);
}
// The same, rounded up to whole vectors, as columns of a product: a partial vector's masked loads
// and stores cost more than the lanes they leave out.
template <typename T>
int64_t band_key_columns(const TileBand& band, int64_t i0) {
  const int64_t end = band_keys_end(band, i0);
  return std::min(band.nc, (end + kTileLanes<T> - 1) / kTileLanes<T> * kTileLanes<T>);
}
// The query rows that attend any key of the block of keys from column j0: [first, end).
inline std::pair<int64_t, int64_t> band_rows_of_keys(const TileBand& band, int64_t j0) {
  if (band.full()) return {0, band.nr};
  const int64_t j1 = std::min(band.nc, j0 + kTileRows);
  // The first row with a key at or past j0, and the first whose keys all lie past the block.
  auto first_row = [&](auto&& past) {
    int64_t lo = 0, hi = band.nr;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (past(mid)) hi = mid; else lo = mid + 1;
    }
    return lo;
  };
  const int64_t first = first_row([&](int64_t r) { return band.hi(r) > j0; });
  const int64_t end = first_row([&](int64_t r) { return band.lo(r) >= j1; });
  return {first, std::max(first, end)};
}

// S (nr x nc) = Q KT: query rows x the tile's keys, each row block up to its last attended key;
// the columns past it keep what they held (the softmax masks them).
template <typename C, typename A, typename B>
void band_score_product(const TileBand& band, C&& s, const A& q, const B& kt) {
  using T = typename std::remove_reference_t<C>::Scalar;
  const int64_t inner = q.cols();
  tile_gemm_banded<T>(false, q.data(), q.outerStride(), kt.data(), kt.outerStride(), s.data(), s.outerStride(), s.rows(),
                      [&](int64_t i0) { return band_key_columns<T>(band, i0); },
                      [inner](int64_t) { return std::pair<int64_t, int64_t>(0, inner); }, false);
}
// C (nr x w) += P (nr x nc) B (nc x w): the keys as the inner index; P is zero outside the band.
template <typename C, typename A, typename B>
void band_key_inner_product(const TileBand& band, C&& c, const A& p, const B& b) {
  using T = typename std::remove_reference_t<C>::Scalar;
  const int64_t n = c.cols();
  tile_gemm_banded<T>(false, p.data(), p.outerStride(), b.data(), b.outerStride(), c.data(), c.outerStride(), c.rows(),
                      [n](int64_t) { return n; },
                      [&](int64_t i0) { return std::pair<int64_t, int64_t>(0, band_keys_end(band, i0)); }, true);
}
// C (nc x w) += P^T B (P nr x nc, B nr x w): the keys as C's rows, the query rows as the inner
// index; P is zero outside the band.
template <typename C, typename A, typename B>
void band_key_rows_product(const TileBand& band, C&& c, const A& p, const B& b) {
  using T = typename std::remove_reference_t<C>::Scalar;
  const int64_t n = c.cols();
  tile_gemm_banded<T>(true, p.data(), p.outerStride(), b.data(), b.outerStride(), c.data(), c.outerStride(), c.rows(),
                      [n](int64_t) { return n; }, [&](int64_t j0) { return band_rows_of_keys(band, j0); }, true);
}

// Elementwise work on a row of a score buffer runs over whole vectors from the row's start (rows
// of the buffers are aligned, their widths whole vectors; scaled_exp.h's band functions): every
// element takes the same vector code wherever it lies, so a (query, key) pair's probability has
// the same bits whether its key came in a 64-key tile or a wider span. Columns past the tile are
// scratch. A row's width in whole vectors:
template <typename T>
int64_t vector_width(int64_t nc) {
  constexpr int64_t packet = Eigen::internal::packet_traits<T>::size;
  return (nc + packet - 1) / packet * packet;
}

// A score buffer (rows of whole vectors, aligned), zeroed so its scratch columns hold numbers.
template <typename T>
RowMajor<T> score_buffer(int64_t key_width) {
  return RowMajor<T>::Zero(kAttentionQueryTile, vector_width<T>(key_width));
}

// The forward's online-softmax step for one key tile: S (nr x nc) holds the raw scores Q K^T on
// entry and exp(scale * S - new row max) inside each row's band (0 outside) on exit; each row's
// running max and sum absorb the tile, and the rows of the accumulator A (the unnormalised output
// so far) are rescaled when their max grows. The caller then adds S V to A.
template <typename T, typename Scores, typename Acc>
void fold_key_tile(const TileBand& band, Scores&& S, Acc&& A, T scale, T* row_max, T* row_sum) {
  const bool full = band.full();
  const int64_t width = vector_width<T>(band.nc);
  for (int64_t r = 0; r < band.nr; ++r) {
    const int64_t lo = full ? 0 : band.lo(r), hi = full ? band.nc : band.hi(r);
    auto row = S.row(r);
    if (lo >= hi) {  // this row sees no key of this tile
      row.setZero();
      continue;
    }
    // The largest scaled score from the raw ones: rounding keeps their order, so this is the
    // largest of the scaled scores themselves.
    const T new_max = std::max(row_max[r], band_extreme(row.data(), lo, hi, scale >= T(0)) * scale);
    const T rescale = std::exp(row_max[r] - new_max);  // exp(-inf) = 0 on the row's first tile
    row_sum[r] = row_sum[r] * rescale + scaled_exp_band(row.data(), width, scale, new_max, lo, hi);
    if (rescale != T(1)) A.row(r) *= rescale;
    row_max[r] = new_max;
  }
}

// The forward's state for one tile of query rows: each row's running max and sum and its
// unnormalised output, with the scores' buffer; one per thread, restarted for every tile.
template <typename T>
struct OnlineSoftmax {
  RowMajor<T> S, acc;
  T row_max[kAttentionQueryTile], row_sum[kAttentionQueryTile];

  // Key tiles (or spans) of up to key_width keys.
  OnlineSoftmax(int64_t v_dim, int64_t key_width) : S(score_buffer<T>(key_width)), acc(kAttentionQueryTile, v_dim) {}

  void start(int64_t nr) {
    acc.topRows(nr).setZero();
    std::fill(row_max, row_max + nr, -std::numeric_limits<T>::infinity());
    std::fill(row_sum, row_sum + nr, T(0));
  }
  // Folds key tile K, V (band.nc rows; KT: K transposed) into the tile's band.nr query rows Q.
  template <typename QRows, typename KCols, typename VRows>
  void attend(const TileBand& band, const QRows& Q, const KCols& KT, const VRows& V, T scale) {
    auto s = S.topLeftCorner(band.nr, band.nc);
    auto A = acc.topRows(band.nr);
    band_score_product(band, s, Q, KT);
    fold_key_tile(band, s, A, scale, row_max, row_sum);
    band_key_inner_product(band, A, s, V);
  }
  // Row r's output and log-sum-exp once every key tile is in. Every query attends at least one
  // key, so row_sum > 0.
  auto output(int64_t r) const { return acc.row(r) / row_sum[r]; }
  T lse(int64_t r) const { return row_max[r] + std::log(row_sum[r]); }
};

// The backward's inner step for one tile of query rows and key tile [k0, k0 + nc): rebuilds
// P = exp(scale * Q K^T - L) inside the band (0 outside) into P_buf, and leaves
// dS = P * (dO V^T - D) in dS_buf, both in their top-left nr x nc corners. L and D are the rows'
// log-sum-exps and dO . O, indexed from the tile's first row; KT and VT the key tile's K and V
// transposed.
template <typename T, typename QRows, typename KCols, typename VCols, typename DORows>
void tile_probabilities_and_dscores(const AttentionDims& dims, const TileBand& band, const QRows& Q, const KCols& KT,
                                    const VCols& VT, const DORows& dO, const T* L, const T* D, RowMajor<T>& P_buf,
                                    RowMajor<T>& dS_buf) {
  const int64_t nr = band.nr, nc = band.nc, width = vector_width<T>(nc);
  const T scale = static_cast<T>(dims.scale);
  const bool full = band.full();
  auto P = P_buf.topLeftCorner(nr, nc);
  auto dS = dS_buf.topLeftCorner(nr, nc);
  band_score_product(band, P, Q, KT);
  band_score_product(band, dS, dO, VT);
  for (int64_t r = 0; r < nr; ++r) {
    const int64_t lo = full ? 0 : band.lo(r), hi = full ? nc : band.hi(r);
    auto p = P.row(r);
    auto g = dS.row(r);
    if (lo >= hi) {
      p.setZero();
      g.setZero();
      continue;
    }
    band_probabilities(p.data(), g.data(), width, scale, L[r], D[r], lo, hi);
  }
}

}  // namespace eat::cpu::attention_tiles
