#include "kernels/cpu/attention_tiled.h"
#include "kernels/cpu/parallel.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/attention_tile_steps.h"

namespace eat::cpu {

namespace {

using namespace attention_tiles;

constexpr int64_t Br = kAttentionQueryTile;
constexpr int64_t Bc = kAttentionKeyTile;

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

// Calls visit(band, first row) for each key tile query tile [q0, q0 + nr) sees, in a fixed
// order: the persistent ones, then those of its band.
template <typename Visit>
void for_each_key_tile(const AttentionDims& dims, int64_t q0, int64_t nr, Visit&& visit) {
  const int64_t n_pt = persistent_tiles(dims);
  auto visit_tile = [&](int64_t i) {
    const TileBand band = key_tile(dims, i, q0, nr);
    visit(band, first_row(dims, band));
  };
  for (int64_t i = 0; i < n_pt; ++i) visit_tile(i);
  for (int64_t kt = first_key_tile(dims, q0); kt < end_key_tile(dims, q0, nr); ++kt) visit_tile(n_pt + kt);
}

}  // namespace

template <typename T>
void attention_tiled_forward(const T* q, const T* k, const T* v, T* out, T* lse, const AttentionDims& dims) {
  const int64_t n = dims.seq, n_qt = tiles(n, Br), tasks = dims.batch * dims.heads * n_qt;
  const T scale = static_cast<T>(dims.scale);
  // One task per (batch, head, query tile); each task owns its output rows outright. Under the
  // causal mask later query tiles visit more key tiles, so tasks are dealt out round-robin
  // (static, 1) to keep threads level. Which thread runs a task never changes its arithmetic:
  // Eigen runs the tile products single-threaded inside a parallel region, so results do not
  // depend on the thread count either.
#pragma omp parallel if(parallel_worth(dims.batch * dims.heads * dims.seq * dims.key_len()))
  {
    OnlineSoftmax<T> rows(dims.v_dim);
#pragma omp for schedule(static, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t qt = task % n_qt, bh = task / n_qt;
      const Head head{dims, bh / dims.heads, bh % dims.heads};
      const int64_t q0 = qt * Br, nr = std::min(Br, n - q0);
      const auto Q = head.qk(q, q0, nr);
      rows.start(nr);
      for_each_key_tile(dims, q0, nr, [&](const TileBand& band, int64_t row) {
        rows.attend(band, Q, head.kk(k, row, band.nc), head.kv(v, row, band.nc), scale);
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

template <typename T>
void attention_tiled_backward(const T* q, const T* k, const T* v, const T* out, const T* lse, const T* dout, T* dq,
                              T* dk, T* dv, const AttentionDims& dims) {
  const int64_t n = dims.seq, bh_count = dims.batch * dims.heads;
  const int64_t n_qt = tiles(n, Br), n_kt = key_tiles(dims);
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
  // increasing order (every one for a tile of persistent keys); every dK/dV row is written by
  // exactly one task.
  if (dk || dv) {
    const int64_t tasks = bh_count * n_kt;
#pragma omp parallel if(parallel_worth(dims.batch * dims.heads * dims.seq * dims.key_len()))
    {
      RowMajor<T> P_buf(Br, Bc), dS_buf(Br, Bc), dK_acc(Bc, dims.qk_dim), dV_acc(Bc, dims.v_dim);
#pragma omp for schedule(static, 1)
      for (int64_t task = 0; task < tasks; ++task) {
        const int64_t kt = task % n_kt, bh = task / n_kt;
        const Head head{dims, bh / dims.heads, bh % dims.heads};
        const TileBand tile = key_tile(dims, kt, 0, 0);
        const int64_t row = first_row(dims, tile), k0 = tile.k0, nc = tile.nc;
        const auto K = head.kk(k, row, nc);
        const auto V = head.kv(v, row, nc);
        auto dKa = dK_acc.topRows(nc);
        auto dVa = dV_acc.topRows(nc);
        dKa.setZero();
        dVa.setZero();
        const int64_t qt_first = tile.persistent ? 0 : first_query_tile(dims, k0);
        const int64_t qt_end = tile.persistent ? n_qt : end_query_tile(dims, k0, nc);
        for (int64_t qt = qt_first; qt < qt_end; ++qt) {
          const int64_t q0 = qt * Br, nr = std::min(Br, n - q0);
          const auto Q = head.qk(q, q0, nr);
          const auto dO = head.vv(dout, q0, nr);
          tile_probabilities_and_dscores<T>(dims, TileBand{dims, q0, nr, k0, nc, nullptr, tile.persistent}, Q, K, V,
                                            dO, lse + bh * n + q0, D.data() + bh * n + q0, P_buf, dS_buf);
          dVa.noalias() += P_buf.topLeftCorner(nr, nc).transpose() * dO;
          dKa.noalias() += dS_buf.topLeftCorner(nr, nc).transpose() * Q;
        }
        if (dv) head.kv(dv, row, nc) = dVa;
        if (dk) head.kk(dk, row, nc) = dKa * scale;
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
        for_each_key_tile(dims, q0, nr, [&](const TileBand& band, int64_t row) {
          const auto K = head.kk(k, row, band.nc);
          tile_probabilities_and_dscores<T>(dims, band, Q, K, head.kv(v, row, band.nc), dO, lse + bh * n + q0,
                                            D.data() + bh * n + q0, P_buf, dS_buf);
          dQa.noalias() += dS_buf.topLeftCorner(nr, band.nc) * K;
        });
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
