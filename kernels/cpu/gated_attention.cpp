// MoH's gated attention on the CPU (kernels/gated_attention.h): per (batch, head), the active
// queries (gate != 0) are gathered into a dense block and walked in tiles of
// kAttentionQueryTile rows by the tiled online softmax of softmax attention
// (kernels/cpu/attention_tile_steps.h); each row keeps its own causal / window band. Inactive
// queries cost nothing but the scan of the gates.
//
// One task per (batch, head) (OpenMP, static): the task owns its query rows and its key rows, so
// the backward walks each (query tile, key tile) pair once, recomputing its probabilities, and
// adds into dq, dk and dv in a fixed order: bit-identical results for any thread count, no races.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/attention_tile_steps.h"
#include "kernels/cpu/attention_tiled.h"
#include "kernels/cpu/parallel.h"
#include "kernels/gated_attention.h"

namespace eat::cpu {

namespace {

using namespace attention_tiles;

constexpr int64_t Br = kAttentionQueryTile;
constexpr int64_t Bc = kAttentionKeyTile;

int64_t gate_index(const AttentionDims& dims, int64_t b, int64_t t, int64_t h) {
  return (b * dims.seq + t) * dims.heads + h;
}

// The positions of head (b, h)'s active queries, increasing.
template <typename T>
void collect_active(const AttentionDims& dims, const T* gates, int64_t b, int64_t h, std::vector<int64_t>& positions) {
  positions.clear();
  for (int64_t t = 0; t < dims.seq; ++t)
    if (gates[gate_index(dims, b, t, h)] != T(0)) positions.push_back(t);
}

// Rows positions[i] of a head's [T, width] view (head.qk or head.vv of a tensor) into row i of
// dense, times factor(i).
template <typename Rows, typename Dense, typename Factor>
void gather_rows(const std::vector<int64_t>& positions, Rows&& rows_of, Dense& dense, int64_t width, Factor&& factor) {
  dense.resize(static_cast<int64_t>(positions.size()), width);
  for (size_t i = 0; i < positions.size(); ++i) dense.row(i) = rows_of(positions[i]).row(0) * factor(i);
}

// Whether any row of the tile attends a key of it: with a sliding window, active queries far
// apart leave key tiles between their bands that no row of the tile sees.
bool any_attended(const TileBand& band) {
  for (int64_t r = 0; r < band.nr; ++r)
    if (band.lo(r) < band.hi(r)) return true;
  return false;
}

// Key tiles a tile of active rows (positions p[0] .. p[nr - 1], increasing) may visit: [first, end).
int64_t first_key_tile(const AttentionDims& dims, const int64_t* p) { return dims.first_key(p[0]) / Bc; }
int64_t end_key_tile(const AttentionDims& dims, const int64_t* p, int64_t nr) {
  return dims.last_key(p[nr - 1]) / Bc + 1;
}

bool worth_threads(const AttentionDims& dims) {
  return parallel_worth(dims.batch * dims.heads * dims.seq * dims.key_len());
}

}  // namespace

template <typename T>
void gated_attention_forward(const AttentionDims& dims, const T* q, const T* k, const T* v, const T* gates, T* y,
                             RowStat* lse) {
  const int64_t n = dims.seq, nk = dims.key_len(), tasks = dims.batch * dims.heads;
  const T scale = static_cast<T>(dims.scale);
#pragma omp parallel if(worth_threads(dims))
  {
    std::vector<int64_t> positions;
    RowMajor<T> Qa;
    OnlineSoftmax<T> rows(dims.v_dim, Bc);
    TransposedRows<T> KT;
    PaddedRows<T> VP;
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < tasks; ++bh) {
      const int64_t b = bh / dims.heads, h = bh % dims.heads;
      const Head head{dims, b, h};
      RowStat* L = lse + bh * n;
      // Inactive rows: y = 0 (and a log-sum-exp nobody reads).
      for (int64_t t = 0; t < n; ++t)
        if (gates[gate_index(dims, b, t, h)] == T(0)) {
          head.vv(y, t, 1).setZero();
          L[t] = 0;
        }
      collect_active(dims, gates, b, h, positions);
      const int64_t m = static_cast<int64_t>(positions.size());
      gather_rows(positions, [&](int64_t t) { return head.qk(q, t, 1); }, Qa, dims.qk_dim, [](size_t) { return T(1); });
      KT.load(head.kk(k, 0, nk), 0, nk);
      VP.load(head.kv(v, 0, nk), 0, nk);

      for (int64_t i0 = 0; i0 < m; i0 += Br) {
        const int64_t nr = std::min(Br, m - i0);
        const int64_t* p = positions.data() + i0;
        const auto Q = Qa.middleRows(i0, nr);
        rows.start(nr);
        for (int64_t kt = first_key_tile(dims, p); kt < end_key_tile(dims, p, nr); ++kt) {
          const int64_t k0 = kt * Bc, nc = std::min(Bc, nk - k0);
          const TileBand band{dims, 0, nr, k0, nc, p};
          if (any_attended(band)) rows.attend(band, Q, KT.cols(k0, nc), VP.rows(k0, nc), scale);
        }
        for (int64_t r = 0; r < nr; ++r) {
          head.vv(y, p[r], 1).row(0) = rows.output(r) * gates[gate_index(dims, b, p[r], h)];
          L[p[r]] = static_cast<RowStat>(rows.lse(r));
        }
      }
    }
  }
}

template <typename T>
void gated_attention_backward(const AttentionDims& dims, const T* q, const T* k, const T* v, const T* gates,
                              const T* y, const RowStat* lse, const T* dy, T* dq, T* dk, T* dv, T* dgates) {
  const int64_t n = dims.seq, nk = dims.key_len(), tasks = dims.batch * dims.heads;
  const T scale = static_cast<T>(dims.scale);
#pragma omp parallel if(worth_threads(dims))
  {
    std::vector<int64_t> positions;
    std::vector<T> La, Da;
    RowMajor<T> Qa, dOa, P_buf = score_buffer<T>(Bc), dS_buf = score_buffer<T>(Bc), dQ_acc(Br, dims.qk_dim);
    TransposedRows<T> KT, VT;
    PaddedRows<T> KP;
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < tasks; ++bh) {
      const int64_t b = bh / dims.heads, h = bh % dims.heads;
      const Head head{dims, b, h};
      auto dK = head.kk(dk, 0, nk);
      auto dV = head.kv(dv, 0, nk);
      dK.setZero();
      dV.setZero();
      collect_active(dims, gates, b, h, positions);
      const int64_t m = static_cast<int64_t>(positions.size());
      auto gate_of = [&](size_t i) { return gates[gate_index(dims, b, positions[i], h)]; };
      // Inactive rows get no gradient; active ones are overwritten below.
      for (int64_t t = 0; t < n; ++t) {
        head.qk(dq, t, 1).setZero();
        dgates[gate_index(dims, b, t, h)] = T(0);
      }
      // The active rows' q, dO = gate dy, log-sum-exp and D = dO . O = dy . y; dgate = dy . O = D / gate.
      gather_rows(positions, [&](int64_t t) { return head.qk(q, t, 1); }, Qa, dims.qk_dim, [](size_t) { return T(1); });
      gather_rows(positions, [&](int64_t t) { return head.vv(dy, t, 1); }, dOa, dims.v_dim, gate_of);
      KT.load(head.kk(k, 0, nk), 0, nk);
      VT.load(head.kv(v, 0, nk), 0, nk);
      KP.load(head.kk(k, 0, nk), 0, nk);
      La.resize(positions.size());
      Da.resize(positions.size());
      for (int64_t i = 0; i < m; ++i) {
        const int64_t t = positions[i];
        La[i] = static_cast<T>(lse[bh * n + t]);
        Da[i] = head.vv(dy, t, 1).row(0).dot(head.vv(y, t, 1).row(0));
        dgates[gate_index(dims, b, t, h)] = Da[i] / gate_of(i);
      }

      for (int64_t i0 = 0; i0 < m; i0 += Br) {
        const int64_t nr = std::min(Br, m - i0);
        const int64_t* p = positions.data() + i0;
        const auto Q = Qa.middleRows(i0, nr);
        const auto dO = dOa.middleRows(i0, nr);
        auto dQa = dQ_acc.topRows(nr);
        dQa.setZero();
        for (int64_t kt = first_key_tile(dims, p); kt < end_key_tile(dims, p, nr); ++kt) {
          const int64_t k0 = kt * Bc, nc = std::min(Bc, nk - k0);
          const TileBand band{dims, 0, nr, k0, nc, p};
          if (!any_attended(band)) continue;
          tile_probabilities_and_dscores<T>(dims, band, Q, KT.cols(k0, nc), VT.cols(k0, nc), dO, La.data() + i0,
                                            Da.data() + i0, P_buf, dS_buf);
          const auto P = P_buf.topLeftCorner(nr, nc);
          const auto dS = dS_buf.topLeftCorner(nr, nc);
          band_key_rows_product(band, dV.middleRows(k0, nc), P, dO);
          band_key_rows_product(band, dK.middleRows(k0, nc), dS, Q);
          band_key_inner_product(band, dQa, dS, KP.rows(k0, nc));
        }
        for (int64_t r = 0; r < nr; ++r) head.qk(dq, p[r], 1).row(0) = dQa.row(r) * scale;
      }
      dK *= scale;
    }
  }
}

EAT_GATED_ATTENTION_INSTANTIATE(float)
EAT_GATED_ATTENTION_INSTANTIATE(double)

}  // namespace eat::cpu
