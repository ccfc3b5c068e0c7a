// Attention over chunk summaries with a private key per query on the GPU
// (kernels/summary_attention.h; the arithmetic of kernels/cpu/summary_attention.cpp). A first,
// simple FlashAttention-style version: tiles of kRows queries against tiles of kKeys summaries,
// both staged in f32 in shared memory, one warp per query row at a time (lane l scores summary
// j0 + l) and per output row (lane c owns columns c, c + 32, ...), every sum in f32 in a fixed
// order: no atomics, deterministic. Storage is f32 or bf16.
//   forward: one online softmax per row, started from the row's own key (m = s_*, l = 1,
//            acc = v_t), so the chunk-0 rows leave y = v_t exactly and lse is always finite;
//            summary tiles stop at the last one the query tile's last row sees, each row masked
//            to j < visible(t).
//   backward, query side (grid over query tiles): P recomputed from lse, dq, dk, dv, and
//            D_t = dy_t.y_t saved for the summary side.
//   backward, summary side (grid over summary tiles): dk_sum, dv_sum, each summary's rows owned
//            by one warp that walks the query tiles seeing it in order (lane l = query row).
// Limits: d, e <= 128.
#include <cmath>

#include "base/dtype.h"
#include "base/error.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scalar.cuh"
#include "kernels/cuda/smem_budget.h"
#include "kernels/cuda/warp_rows.cuh"
#include "kernels/summary_attention.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/memory.h"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

using namespace warp_rows;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarp;
constexpr int kRows = 32;  // query rows of a tile (a warp takes kRows / kWarps of them)
constexpr int kKeys = kWarp;  // summaries of a tile: one per lane
constexpr const char* kOp = "summary_attention (CUDA)";

template <typename D> struct Args {
  const D *q, *k, *v, *k_sum, *v_sum, *y, *dy;
  D *y_out, *dq, *dk, *dv, *dk_sum, *dv_sum;
  float* lse;              // [B, H, T]: written by the forward, read by the backward
  float* rowdot;           // [B, H, T]: D_t = dy_t.y_t, from the query side to the summary side
  int T, H, C, d, e, chunk, query_offset;
  float scale;

  __device__ int visible(int t) const { return min((query_offset + t) / chunk, C); }
  __device__ int first_query(int j) const {
    return static_cast<int>(min(max((j + 1LL) * chunk - query_offset, 0LL), static_cast<long long>(T)));
  }
  // Element (row, col) of head h in batch b of a [B, N, H, width] tensor.
  __device__ long long at(int b, int N, int h, int width, int row) const {
    return ((static_cast<long long>(b) * N + row) * H + h) * width;
  }
};

// The smem layout of a query tile and a summary tile; padded strides where a lane reads a row of
// its own (conflict-free).
struct Smem {
  float *q, *x, *ks, *vs;  // q [kRows, d + 1], x (dy) [kRows, e + 1], ks [kKeys, d + 1], vs [kKeys, e + 1]
  float *lse, *rowdot;     // [kRows]
  __device__ Smem(float* base, int d, int e) {
    q = base;
    x = q + kRows * (d + 1);
    ks = x + kRows * (e + 1);
    vs = ks + kKeys * (d + 1);
    lse = vs + kKeys * (e + 1);
    rowdot = lse + kRows;
  }
  static size_t bytes(int d, int e) {
    return sizeof(float) * (static_cast<size_t>(kRows) * (d + 1 + e + 1) + kKeys * (d + 1 + e + 1) + 2 * kRows);
  }
};

// Summaries [j0, j0 + nc) of head (b, h) into the tile (zero rows past nc), once every thread is
// done with the previous tile.
template <typename D>
__device__ void load_summary_tile(const Args<D>& a, const Smem& sm, int b, int h, int j0, int nc) {
  __syncthreads();
  load_rows(sm.ks, a.d + 1, a.k_sum, b, a.C, a.H, h, a.d, j0, kKeys, nc);
  load_rows(sm.vs, a.e + 1, a.v_sum, b, a.C, a.H, h, a.e, j0, kKeys, nc);
  __syncthreads();
}

// A query-side block's tile: queries [t0, t0 + nr) (blockIdx.x) of head (b, h) (blockIdx.y), the
// summaries its last query sees (n_max), and this thread's lane and warp.
struct QueryTile {
  int t0, bh, b, h, nr, n_max, lane, warp;
  template <typename D>
  __device__ explicit QueryTile(const Args<D>& a)
      : t0(blockIdx.x * kRows), bh(blockIdx.y), b(bh / a.H), h(bh % a.H), nr(min(kRows, a.T - t0)),
        n_max(a.visible(t0 + nr - 1)), lane(threadIdx.x % kWarp), warp(threadIdx.x / kWarp) {}
};

template <typename D>
__global__ void __launch_bounds__(kThreads) forward_kernel(Args<D> a) {
  extern __shared__ float smem[];
  const Smem sm(smem, a.d, a.e);
  const auto [t0, bh, b, h, nr, n_max, lane, warp] = QueryTile(a);
  const int dp = a.d + 1, ep = a.e + 1;
  load_rows(sm.q, dp, a.q, b, a.T, a.H, h, a.d, t0, kRows, nr);
  __syncthreads();
  // Each warp's rows: the running max, sum and output columns, started from the own key.
  constexpr int kMine = kRows / kWarps;
  float m[kMine], l[kMine], acc[kMine][kCols];
#pragma unroll
  for (int i = 0; i < kMine; ++i) {
    const int r = warp * kMine + i, t = t0 + r;
    m[i] = 0.f, l[i] = 1.f;
#pragma unroll
    for (int c = 0; c < kCols; ++c) acc[i][c] = 0.f;
    if (r >= nr) continue;
    float kr[kCols];
    row_to_regs(a.k + a.at(b, a.T, h, a.d, t), a.d, lane, kr);
    row_to_regs(a.v + a.at(b, a.T, h, a.e, t), a.e, lane, acc[i]);
    m[i] = a.scale * warp_dot(sm.q + r * dp, a.d, lane, kr);
  }
  for (int j0 = 0; j0 < n_max; j0 += kKeys) {
    const int nc = min(kKeys, n_max - j0);
    load_summary_tile(a, sm, b, h, j0, nc);
#pragma unroll
    for (int i = 0; i < kMine; ++i) {
      const int r = warp * kMine + i;
      if (r >= nr) continue;  // warp-uniform
      const int seen = min(a.visible(t0 + r) - j0, nc);  // summaries of this tile the row sees
      if (seen <= 0) continue;
      const float s = lane < seen ? a.scale * dot(sm.q + r * dp, sm.ks + lane * dp, a.d) : -INFINITY;
      const float m_new = fmaxf(m[i], warp_max(s));
      const float p = lane < seen ? expf(s - m_new) : 0.f;
      const float alpha = expf(m[i] - m_new);
      l[i] = l[i] * alpha + warp_sum(p);
      m[i] = m_new;
#pragma unroll
      for (int c = 0; c < kCols; ++c) acc[i][c] *= alpha;
      add_weighted_rows(acc[i], p, seen, sm.vs, ep, a.e, lane);
    }
  }
#pragma unroll
  for (int i = 0; i < kMine; ++i) {
    const int r = warp * kMine + i, t = t0 + r;
    if (r >= nr) continue;
    const float inv = 1.f / l[i];
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int col = lane + kWarp * c;
      if (col < a.e) a.y_out[a.at(b, a.T, h, a.e, t) + col] = from_f32<D>(acc[i][c] * inv);
    }
    if (lane == 0) a.lse[static_cast<long long>(bh) * a.T + t] = m[i] + logf(l[i]);
  }
}

// Backward, query side: per row, P recomputed against the summary tiles, dq accumulated in the
// lane's columns; then the own key's terms and the outputs dq, dk, dv and rowdot.
template <typename D>
__global__ void __launch_bounds__(kThreads) query_grad_kernel(Args<D> a) {
  extern __shared__ float smem[];
  const Smem sm(smem, a.d, a.e);
  const auto [t0, bh, b, h, nr, n_max, lane, warp] = QueryTile(a);
  const int dp = a.d + 1, ep = a.e + 1;
  load_rows(sm.q, dp, a.q, b, a.T, a.H, h, a.d, t0, kRows, nr);
  load_rows(sm.x, ep, a.dy, b, a.T, a.H, h, a.e, t0, kRows, nr);
  constexpr int kMine = kRows / kWarps;
  float dq[kMine][kCols];
#pragma unroll
  for (int i = 0; i < kMine; ++i) {
#pragma unroll
    for (int c = 0; c < kCols; ++c) dq[i][c] = 0.f;
  }
  // The per-row statistics: lse from the forward, D_t = dy_t.y_t.
  __syncthreads();
  for (int i = 0; i < kMine; ++i) {
    const int r = warp * kMine + i, t = t0 + r;
    if (r >= nr) continue;
    float yr[kCols];
    row_to_regs(a.y + a.at(b, a.T, h, a.e, t), a.e, lane, yr);
    const float rd = warp_dot(sm.x + r * ep, a.e, lane, yr);
    if (lane == 0) {
      sm.rowdot[r] = rd;
      sm.lse[r] = a.lse[static_cast<long long>(bh) * a.T + t];
      a.rowdot[static_cast<long long>(bh) * a.T + t] = rd;
    }
  }
  __syncthreads();  // the row statistics are read by every lane
  for (int j0 = 0; j0 < n_max; j0 += kKeys) {
    const int nc = min(kKeys, n_max - j0);
    load_summary_tile(a, sm, b, h, j0, nc);
#pragma unroll
    for (int i = 0; i < kMine; ++i) {
      const int r = warp * kMine + i;
      if (r >= nr) continue;  // warp-uniform
      const int seen = min(a.visible(t0 + r) - j0, nc);
      if (seen <= 0) continue;
      float ds = 0.f;
      if (lane < seen) {
        const float p = expf(a.scale * dot(sm.q + r * dp, sm.ks + lane * dp, a.d) - sm.lse[r]);
        ds = p * (dot(sm.x + r * ep, sm.vs + lane * ep, a.e) - sm.rowdot[r]);
      }
      add_weighted_rows(dq[i], ds, seen, sm.ks, dp, a.d, lane);
    }
  }
#pragma unroll
  for (int i = 0; i < kMine; ++i) {
    const int r = warp * kMine + i, t = t0 + r;
    if (r >= nr) continue;
    float kr[kCols], vr[kCols];
    row_to_regs(a.k + a.at(b, a.T, h, a.d, t), a.d, lane, kr);
    row_to_regs(a.v + a.at(b, a.T, h, a.e, t), a.e, lane, vr);
    const float own_p = expf(a.scale * warp_dot(sm.q + r * dp, a.d, lane, kr) - sm.lse[r]);
    const float own_ds = own_p * (warp_dot(sm.x + r * ep, a.e, lane, vr) - sm.rowdot[r]);
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
      const int col = lane + kWarp * c;
      if (col < a.d) {
        const long long o = a.at(b, a.T, h, a.d, t) + col;
        a.dq[o] = from_f32<D>(a.scale * fmaf(own_ds, kr[c], dq[i][c]));
        a.dk[o] = from_f32<D>(a.scale * own_ds * sm.q[r * dp + col]);
      }
      if (col < a.e) a.dv[a.at(b, a.T, h, a.e, t) + col] = from_f32<D>(own_p * sm.x[r * ep + col]);
    }
  }
}

// Backward, summary side: warp w owns summaries j0 + w, j0 + w + kWarps, ... of the tile and walks
// the query tiles that see any of the tile's summaries in order; lane l takes query row t0 + l.
template <typename D>
__global__ void __launch_bounds__(kThreads) summary_grad_kernel(Args<D> a) {
  extern __shared__ float smem[];
  const Smem sm(smem, a.d, a.e);
  const int j0 = blockIdx.x * kKeys, bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
  const int nc = min(kKeys, a.C - j0), lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int dp = a.d + 1, ep = a.e + 1;
  load_rows(sm.ks, dp, a.k_sum, b, a.C, a.H, h, a.d, j0, kKeys, nc);
  load_rows(sm.vs, ep, a.v_sum, b, a.C, a.H, h, a.e, j0, kKeys, nc);
  constexpr int kMine = kKeys / kWarps;
  float dks[kMine][kCols], dvs[kMine][kCols];
#pragma unroll
  for (int i = 0; i < kMine; ++i) {
#pragma unroll
    for (int c = 0; c < kCols; ++c) dks[i][c] = dvs[i][c] = 0.f;
  }
  // Queries before the first that sees summary j0 see none of the tile (later summaries are seen
  // later still); rows that see some of the tile's summaries but not all are masked per lane.
  const int first = a.first_query(j0) / kRows * kRows;
  for (int t0 = first; t0 < a.T; t0 += kRows) {
    const int nr = min(kRows, a.T - t0);
    __syncthreads();  // the previous query tile is no longer read
    load_rows(sm.q, dp, a.q, b, a.T, a.H, h, a.d, t0, kRows, nr);
    load_rows(sm.x, ep, a.dy, b, a.T, a.H, h, a.e, t0, kRows, nr);
    for (int r = threadIdx.x; r < kRows; r += blockDim.x) {
      const long long o = static_cast<long long>(bh) * a.T + t0 + r;
      sm.lse[r] = r < nr ? a.lse[o] : 0.f;
      sm.rowdot[r] = r < nr ? a.rowdot[o] : 0.f;
    }
    __syncthreads();
    const int seen_by_lane = lane < nr ? a.visible(t0 + lane) : 0;  // lane's query sees j < this
#pragma unroll
    for (int i = 0; i < kMine; ++i) {
      const int jl = warp + kWarps * i, j = j0 + jl;
      if (jl >= nc) continue;  // warp-uniform
      add_key_row_grads(j < seen_by_lane, sm.ks + jl * dp, sm.vs + jl * ep, sm.q, sm.x, sm.lse, sm.rowdot, a.d, a.e,
                        a.scale, nr, lane, dks[i], dvs[i]);
    }
  }
#pragma unroll
  for (int i = 0; i < kMine; ++i) {
    const int jl = warp + kWarps * i, j = j0 + jl;
    if (jl >= nc) continue;
    store_row(a.dk_sum + a.at(b, a.C, h, a.d, j), dks[i], a.scale, a.d, lane);
    store_row(a.dv_sum + a.at(b, a.C, h, a.e, j), dvs[i], 1.f, a.e, lane);
  }
}

template <typename D>
Args<D> make_args(const HeadShape& s, const SummaryAttentionArgs& sa) {
  EAT_CHECK(s.d <= kMaxWidth && s.e <= kMaxWidth, kOp, ": head widths up to ", kMaxWidth, ", got d = ", s.d,
            ", e = ", s.e);
  EAT_CHECK(s.T < (int64_t{1} << 30) && sa.summaries < (int64_t{1} << 30) && sa.query_offset + s.T < (int64_t{1} << 30),
            kOp, ": sequence too long for 32-bit positions");
  Args<D> a{};
  a.T = static_cast<int>(s.T), a.H = static_cast<int>(s.H), a.C = static_cast<int>(sa.summaries);
  a.d = static_cast<int>(s.d), a.e = static_cast<int>(s.e);
  a.chunk = static_cast<int>(std::min<int64_t>(sa.chunk, int64_t{1} << 30));
  a.query_offset = static_cast<int>(sa.query_offset);
  a.scale = static_cast<float>(sa.scale);
  return a;
}

// Launches `kernel` over a grid of (tiles, B * H) with the dynamic smem of the tiles.
template <typename D>
void launch(void (*kernel)(Args<D>), const Args<D>& a, int64_t tiles, int64_t heads) {
  const size_t bytes = Smem::bytes(a.d, a.e);
  EAT_CHECK(bytes <= static_cast<size_t>(smem_budget()), kOp, ": needs ", bytes, " bytes of shared memory, the device allows ",
            smem_budget());
  EAT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  kernel<<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(heads)), kThreads, bytes, compute_stream()>>>(a);
  EAT_CUDA_CHECK_LAUNCH();
}

}  // namespace

template <typename T>
void summary_attention_forward(const HeadShape& s, const SummaryAttentionArgs& sa, const T* q, const T* k, const T* v,
                               const T* k_sum, const T* v_sum, T* y, RowStat* lse) {
  if (s.B * s.H * s.T == 0) return;
  using D = device_t<T>;
  Args<D> a = make_args<D>(s, sa);
  a.q = dev(q), a.k = dev(k), a.v = dev(v), a.k_sum = dev(k_sum), a.v_sum = dev(v_sum), a.y_out = dev(y);
  a.lse = lse;
  launch<D>(forward_kernel<D>, a, (s.T + kRows - 1) / kRows, s.B * s.H);
}

template <typename T>
void summary_attention_backward(const HeadShape& s, const SummaryAttentionArgs& sa, const T* q, const T* k,
                                const T* v, const T* k_sum, const T* v_sum, const T* y, const RowStat* lse,
                                const T* dy, T* dq, T* dk, T* dv, T* dk_sum, T* dv_sum) {
  using D = device_t<T>;
  const int64_t heads = s.B * s.H;
  if (heads * s.T == 0) {  // no query sees a summary (the summary side writes every row otherwise)
    if (sa.summaries > 0) zero(dk_sum, static_cast<size_t>(heads * sa.summaries * s.d) * sizeof(T));
    if (sa.summaries > 0) zero(dv_sum, static_cast<size_t>(heads * sa.summaries * s.e) * sizeof(T));
    return;
  }
  Args<D> a = make_args<D>(s, sa);
  a.q = dev(q), a.k = dev(k), a.v = dev(v), a.k_sum = dev(k_sum), a.v_sum = dev(v_sum), a.y = dev(y), a.dy = dev(dy);
  a.dq = dev(dq), a.dk = dev(dk), a.dv = dev(dv), a.dk_sum = dev(dk_sum), a.dv_sum = dev(dv_sum);
  a.lse = const_cast<float*>(lse);  // read only by the backward kernels
  // Freed right after the launches: the allocator reuses it only for work queued after them.
  a.rowdot = static_cast<float*>(device_alloc(static_cast<size_t>(heads * s.T) * sizeof(float)));
  launch<D>(query_grad_kernel<D>, a, (s.T + kRows - 1) / kRows, heads);
  if (sa.summaries > 0) launch<D>(summary_grad_kernel<D>, a, (sa.summaries + kKeys - 1) / kKeys, heads);
  device_free(a.rowdot);
}

#define EAT_INSTANTIATE(T)                                                                                        \
  template void summary_attention_forward<T>(const HeadShape&, const SummaryAttentionArgs&, const T*, const T*,   \
                                             const T*, const T*, const T*, T*, RowStat*);                         \
  template void summary_attention_backward<T>(const HeadShape&, const SummaryAttentionArgs&, const T*, const T*,  \
                                              const T*, const T*, const T*, const T*, const RowStat*, const T*, T*, \
                                              T*, T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(bf16)
#undef EAT_INSTANTIATE

}  // namespace eat::cuda
