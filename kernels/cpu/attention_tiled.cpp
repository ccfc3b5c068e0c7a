#include "kernels/cpu/attention_tiled.h"
#include "kernels/cpu/parallel.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/attention_tile_steps.h"

namespace eat::cpu {

namespace {

using namespace attention_tiles;

constexpr int64_t Br = kAttentionQueryTile;
constexpr int64_t Bc = kAttentionKeyTile;
// Keys per product and softmax step: the forward's 64 x 512 scores (128 KiB in f32); the
// backward's two score buffers (P and dS) of 64 x 256 each, which measured about 3% faster at
// 512 tokens than 512-key spans (and alike at 4096).
constexpr int64_t kForwardKeySpan = 8 * Bc;
constexpr int64_t kBackwardKeySpan = 4 * Bc;

// Key tiles that query tile [q0, q0 + nr) must visit: [first, end) in units of Bc. Every one of
// them holds at least one attended pair (the band is contiguous and slides by one per query).
int64_t first_key_tile(const AttentionDims& dims, int64_t q0) { return dims.first_key(q0) / Bc; }
int64_t end_key_tile(const AttentionDims& dims, int64_t q0, int64_t nr) { return dims.last_key(q0 + nr - 1) / Bc + 1; }
// Query tiles that see key tile [k0, k0 + nc), likewise.
int64_t first_query_tile(const AttentionDims& dims, int64_t k0) { return dims.first_query(k0) / Br; }
int64_t end_query_tile(const AttentionDims& dims, int64_t k0, int64_t nc) {
  return dims.last_query(k0 + nc - 1) / Br + 1;
}

// A head's key tiles: first the persistent keys, Bc rows at a time (every query sees them), then
// the sequence's keys, Bc positions at a time from row `prefix`, so the band's tiles are those of
// attention without a prefix. Key tile i of them (0 <= i < key_tiles) as a band of query tile
// [q0, q0 + nr), and its first row of k and v.
int64_t persistent_tiles(const AttentionDims& dims) { return tiles(dims.prefix, Bc); }
int64_t key_tiles(const AttentionDims& dims) { return persistent_tiles(dims) + tiles(dims.key_len(), Bc); }
TileBand key_tile(const AttentionDims& dims, int64_t i, int64_t q0, int64_t nr) {
  const int64_t n_pt = persistent_tiles(dims);
  if (i < n_pt) return TileBand{dims, q0, nr, i * Bc, std::min(Bc, dims.prefix - i * Bc), nullptr, true};
  const int64_t k0 = (i - n_pt) * Bc;
  return TileBand{dims, q0, nr, k0, std::min(Bc, dims.key_len() - k0)};
}
int64_t first_row(const AttentionDims& dims, const TileBand& tile) {
  return tile.persistent ? tile.k0 : dims.prefix + tile.k0;
}

// Calls visit(band, first row) for the keys query tile [q0, q0 + nr) sees, in a fixed order: the
// persistent ones, then those of its band from the first key tile holding an attended key to the
// last. Up to `span` keys (whole key tiles) at a time: one product and one softmax step per
// span instead of per tile, and still only the tiles cut by the band's edge hold masked pairs.
template <typename Visit>
void for_each_key_span(const AttentionDims& dims, int64_t q0, int64_t nr, int64_t span, Visit&& visit) {
  for (int64_t k0 = 0; k0 < dims.prefix; k0 += span)
    visit(TileBand{dims, q0, nr, k0, std::min(span, dims.prefix - k0), nullptr, true}, k0);
  const int64_t end = std::min(dims.key_len(), end_key_tile(dims, q0, nr) * Bc);
  for (int64_t k0 = first_key_tile(dims, q0) * Bc; k0 < end; k0 += span)
    visit(TileBand{dims, q0, nr, k0, std::min(span, end - k0)}, dims.prefix + k0);
}

// Whether one task per (batch, head) keeps every thread busy: as many heads as threads, evenly
// shared, or at least two each. Otherwise tasks are tiles of heads, which rebuild more.
bool tasks_per_head(const AttentionDims& dims) {
  const int64_t heads = dims.batch * dims.heads, threads = omp_get_max_threads();
  return heads >= 2 * threads || heads % threads == 0;
}

bool worth_threads(const AttentionDims& dims) {
  return parallel_worth(dims.batch * dims.heads * dims.seq * dims.key_len());
}

// Transposes the key-side rows of the key tiles query tile [q0, q0 + nr) visits (into their columns).
template <typename Load>
void load_visited(const AttentionDims& dims, int64_t q0, int64_t nr, Load&& load) {
  for_each_key_span(dims, q0, nr, kForwardKeySpan, [&](const TileBand& band, int64_t row) { load(row, band.nc); });
}

// D[b, h, t] = dO_t . O_t (= sum_j P_tj dP_tj): the softmax backward's per-row correction.
template <typename T>
std::vector<T> row_corrections(const T* out, const T* dout, const AttentionDims& dims) {
  const int64_t n = dims.seq, bh_count = dims.batch * dims.heads;
  std::vector<T> D(static_cast<size_t>(bh_count * n));
#pragma omp parallel for schedule(static) if(worth_threads(dims))
  for (int64_t row = 0; row < bh_count * n; ++row) {
    const int64_t bh = row / n, t = row % n;
    const Head head{dims, bh / dims.heads, bh % dims.heads};
    D[static_cast<size_t>(row)] = head.vv(dout, t, 1).row(0).dot(head.vv(out, t, 1).row(0));
  }
  return D;
}

// What every backward task reads, and one thread's buffers: the probabilities and score
// gradients of one (query tile, key tile) pair, and the head's keys and values transposed.
template <typename T>
struct BackwardPair {
  const T *q, *k, *v, *lse, *dout, *D;
  const AttentionDims& dims;
  RowMajor<T> P_buf = score_buffer<T>(kBackwardKeySpan), dS_buf = score_buffer<T>(kBackwardKeySpan);
  TransposedRows<T> KT{}, VT{};
  PaddedRows<T> K{}, Q{}, dO{};

  // Transposes key rows [row, row + count) of the head, and copies them out for dQ = dS K when
  // the task computes dQ.
  void load(const Head& head, int64_t row, int64_t count, bool for_dq) {
    KT.load(head.kk(k, row, count), row, dims.key_rows());
    VT.load(head.kv(v, row, count), row, dims.key_rows());
    if (for_dq) K.load(head.kk(k, row, count), row, dims.key_rows());
  }
  // Copies out the rows of q and dout of query tile [q0, q0 + nr) (queries() and douts() view them).
  void load_queries(const Head& head, int64_t q0, int64_t nr) {
    Q.load(head.qk(q, q0, nr), 0, kAttentionQueryTile);
    dO.load(head.vv(dout, q0, nr), 0, kAttentionQueryTile);
  }
  auto queries(int64_t nr) const { return Q.rows(0, nr); }
  auto douts(int64_t nr) const { return dO.rows(0, nr); }
  // P and dS of query rows Q (dout rows dO) against the band's key tile, whose first row is `row`
  // (loaded before); their nr x nc corners are returned.
  template <typename QRows, typename DORows>
  void rebuild(const Head& head, const TileBand& band, int64_t row, const QRows& Q, const DORows& dO) {
    const int64_t bh = head.b * dims.heads + head.h;
    tile_probabilities_and_dscores<T>(dims, band, Q, KT.cols(row, band.nc), VT.cols(row, band.nc), dO,
                                      lse + bh * dims.seq + band.q0, D + bh * dims.seq + band.q0, P_buf, dS_buf);
  }
  auto P(const TileBand& band) const { return P_buf.topLeftCorner(band.nr, band.nc); }
  auto dS(const TileBand& band) const { return dS_buf.topLeftCorner(band.nr, band.nc); }
};

}  // namespace

template <typename T>
void attention_tiled_forward(const T* q, const T* k, const T* v, T* out, T* lse, const AttentionDims& dims) {
  const int64_t n = dims.seq, n_qt = tiles(n, Br), rows_k = dims.key_rows();
  const bool per_head = tasks_per_head(dims);
  const int64_t tiles_per_task = per_head ? n_qt : 1, tasks = dims.batch * dims.heads * (per_head ? 1 : n_qt);
  const T scale = static_cast<T>(dims.scale);
  // One task per head, or per (head, query tile) when heads are few; each task owns its output
  // rows outright. Under the causal mask later query tiles visit more key tiles, so tasks are
  // dealt out round-robin (static, 1) to keep threads level. Every tile's arithmetic is the same
  // under either split and on any thread, so results do not depend on the thread count.
#pragma omp parallel if(worth_threads(dims))
  {
    OnlineSoftmax<T> rows(dims.v_dim, kForwardKeySpan);
    TransposedRows<T> KT;
    PaddedRows<T> VP;
    auto load = [&](const Head& head, int64_t row, int64_t count) {
      KT.load(head.kk(k, row, count), row, rows_k);
      VP.load(head.kv(v, row, count), row, rows_k);
    };
#pragma omp for schedule(static, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t bh = per_head ? task : task / n_qt, qt_first = per_head ? 0 : task % n_qt;
      const Head head{dims, bh / dims.heads, bh % dims.heads};
      if (per_head) load(head, 0, rows_k);
      for (int64_t qt = qt_first; qt < qt_first + tiles_per_task; ++qt) {
        const int64_t q0 = qt * Br, nr = std::min(Br, n - q0);
        if (!per_head) load_visited(dims, q0, nr, [&](int64_t row, int64_t count) { load(head, row, count); });
        const auto Q = head.qk(q, q0, nr);
        rows.start(nr);
        for_each_key_span(dims, q0, nr, kForwardKeySpan, [&](const TileBand& band, int64_t row) {
          rows.attend(band, Q, KT.cols(row, band.nc), VP.rows(row, band.nc), scale);
        });
        auto O = head.vv(out, q0, nr);
        T* L = lse + bh * n + q0;
        for (int64_t r = 0; r < nr; ++r) {
          O.row(r) = rows.output(r);
          L[r] = rows.lse(r);
        }
      }
    }
  }
}

template <typename T>
void attention_tiled_backward_by_head(const T* q, const T* k, const T* v, const T* out, const T* lse, const T* dout,
                                      T* dq, T* dk, T* dv, const AttentionDims& dims) {
  const int64_t n = dims.seq, n_qt = tiles(n, Br), bh_count = dims.batch * dims.heads, rows = dims.key_rows();
  const T scale = static_cast<T>(dims.scale);
  const std::vector<T> D = row_corrections(out, dout, dims);
  // One task per (batch, head): it owns that head's rows of dq, dk and dv, so every (query tile,
  // key tile) pair's probabilities are built once and feed all three. Query tiles in increasing
  // order, each walking its key tiles in increasing order: every dq row sums its key tiles in
  // that order, and every dk/dv row its query tiles, as the two-pass schedule does.
#pragma omp parallel if(worth_threads(dims))
  {
    BackwardPair<T> pair{q, k, v, lse, dout, D.data(), dims};
    RowMajor<T> dQ_acc(Br, dims.qk_dim);
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < bh_count; ++bh) {
      const Head head{dims, bh / dims.heads, bh % dims.heads};
      // An unwanted gradient is an empty view (its products are skipped).
      auto key_grad = [&](T* base, int64_t width, bool value) {
        if (!base) return HeadRows<T>(nullptr, 0, width, Eigen::OuterStride<>(width));
        return value ? head.kv(base, 0, rows) : head.kk(base, 0, rows);
      };
      auto dK = key_grad(dk, dims.qk_dim, false);
      auto dV = key_grad(dv, dims.v_dim, true);
      dK.setZero();
      dV.setZero();
      pair.load(head, 0, rows, dq != nullptr);
      for (int64_t qt = 0; qt < n_qt; ++qt) {
        const int64_t q0 = qt * Br, nr = std::min(Br, n - q0);
        pair.load_queries(head, q0, nr);
        const auto Q = pair.queries(nr);
        const auto dO = pair.douts(nr);
        auto dQa = dQ_acc.topRows(nr);
        dQa.setZero();
        for_each_key_span(dims, q0, nr, kBackwardKeySpan, [&](const TileBand& band, int64_t row) {
          pair.rebuild(head, band, row, Q, dO);
          if (dv) band_key_rows_product(band, dV.middleRows(row, band.nc), pair.P(band), dO);
          if (dk) band_key_rows_product(band, dK.middleRows(row, band.nc), pair.dS(band), Q);
          if (dq) band_key_inner_product(band, dQa, pair.dS(band), pair.K.rows(row, band.nc));
        });
        if (dq) head.qk(dq, q0, nr) = dQa * scale;
      }
      if (dk) dK *= scale;
    }
  }
}

template <typename T>
void attention_tiled_backward_by_tile(const T* q, const T* k, const T* v, const T* out, const T* lse, const T* dout,
                                      T* dq, T* dk, T* dv, const AttentionDims& dims) {
  const int64_t n = dims.seq, bh_count = dims.batch * dims.heads;
  const int64_t n_qt = tiles(n, Br), n_kt = key_tiles(dims);
  const T scale = static_cast<T>(dims.scale);
  const std::vector<T> D = row_corrections(out, dout, dims);

  // Pass 1, dK and dV: one task per (batch, head, key tile), which walks its query tiles in
  // increasing order (every one for a tile of persistent keys); every dK/dV row is written by
  // exactly one task.
  if (dk || dv) {
    const int64_t tasks = bh_count * n_kt;
#pragma omp parallel if(worth_threads(dims))
    {
      BackwardPair<T> pair{q, k, v, lse, dout, D.data(), dims};
      RowMajor<T> dK_acc(Bc, dims.qk_dim), dV_acc(Bc, dims.v_dim);
#pragma omp for schedule(static, 1)
      for (int64_t task = 0; task < tasks; ++task) {
        const int64_t kt = task % n_kt, bh = task / n_kt;
        const Head head{dims, bh / dims.heads, bh % dims.heads};
        const TileBand tile = key_tile(dims, kt, 0, 0);
        const int64_t row = first_row(dims, tile), k0 = tile.k0, nc = tile.nc;
        auto dKa = dK_acc.topRows(nc);
        auto dVa = dV_acc.topRows(nc);
        dKa.setZero();
        dVa.setZero();
        pair.load(head, row, nc, false);
        const int64_t qt_first = tile.persistent ? 0 : first_query_tile(dims, k0);
        const int64_t qt_end = tile.persistent ? n_qt : end_query_tile(dims, k0, nc);
        for (int64_t qt = qt_first; qt < qt_end; ++qt) {
          const int64_t q0 = qt * Br, nr = std::min(Br, n - q0);
          pair.load_queries(head, q0, nr);
          const auto Q = pair.queries(nr);
          const auto dO = pair.douts(nr);
          const TileBand band{dims, q0, nr, k0, nc, nullptr, tile.persistent};
          pair.rebuild(head, band, row, Q, dO);
          band_key_rows_product(band, dVa, pair.P(band), dO);
          band_key_rows_product(band, dKa, pair.dS(band), Q);
        }
        if (dv) head.kv(dv, row, nc) = dVa;
        if (dk) head.kk(dk, row, nc) = dKa * scale;
      }
    }
  }

  // Pass 2, dQ: one task per (batch, head, query tile), walking its key tiles in increasing order.
  if (dq) {
    const int64_t tasks = bh_count * n_qt;
#pragma omp parallel if(worth_threads(dims))
    {
      BackwardPair<T> pair{q, k, v, lse, dout, D.data(), dims};
      RowMajor<T> dQ_acc(Br, dims.qk_dim);
#pragma omp for schedule(static, 1)
      for (int64_t task = 0; task < tasks; ++task) {
        const int64_t qt = task % n_qt, bh = task / n_qt;
        const Head head{dims, bh / dims.heads, bh % dims.heads};
        const int64_t q0 = qt * Br, nr = std::min(Br, n - q0);
        pair.load_queries(head, q0, nr);
        const auto Q = pair.queries(nr);
        const auto dO = pair.douts(nr);
        auto dQa = dQ_acc.topRows(nr);
        dQa.setZero();
        load_visited(dims, q0, nr, [&](int64_t row, int64_t count) { pair.load(head, row, count, true); });
        for_each_key_span(dims, q0, nr, kBackwardKeySpan, [&](const TileBand& band, int64_t row) {
          pair.rebuild(head, band, row, Q, dO);
          band_key_inner_product(band, dQa, pair.dS(band), pair.K.rows(row, band.nc));
        });
        head.qk(dq, q0, nr) = dQa * scale;
      }
    }
  }
}

template <typename T>
void attention_tiled_backward(const T* q, const T* k, const T* v, const T* out, const T* lse, const T* dout, T* dq,
                              T* dk, T* dv, const AttentionDims& dims) {
  // Both schedules give the same bits (every sum runs in the same order), so the choice may follow
  // the thread count: by head does less work, by tile keeps more threads busy when heads are few.
  if (tasks_per_head(dims))
    attention_tiled_backward_by_head(q, k, v, out, lse, dout, dq, dk, dv, dims);
  else
    attention_tiled_backward_by_tile(q, k, v, out, lse, dout, dq, dk, dv, dims);
}

#define EAT_INSTANTIATE(T)                                                                                     \
  template void attention_tiled_forward<T>(const T*, const T*, const T*, T*, T*, const AttentionDims&);        \
  template void attention_tiled_backward<T>(const T*, const T*, const T*, const T*, const T*, const T*, T*, T*, \
                                            T*, const AttentionDims&);                                         \
  template void attention_tiled_backward_by_head<T>(const T*, const T*, const T*, const T*, const T*, const T*, T*, \
                                                    T*, T*, const AttentionDims&);                             \
  template void attention_tiled_backward_by_tile<T>(const T*, const T*, const T*, const T*, const T*, const T*, T*, \
                                                    T*, T*, const AttentionDims&);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
