// MoH's gated attention on the GPU (kernels/gated_attention.h; the arithmetic of
// kernels/cpu/gated_attention.cpp). A first, simple version in the manner of
// summary_attention.cu: tiles of kRows active queries against tiles of kKeys keys, both staged in
// f32 in shared memory, one warp per query row at a time (lane l scores key k0 + l) and per output
// row (lane c owns columns c, c + 32, ...), every sum in f32 in a fixed order: no atomics,
// deterministic. Storage is f32 or bf16.
//   compaction: one block per (b, h) lists the head's active query positions (gate != 0) in
//            increasing order, by a ballot and prefix sum over each 256-token chunk.
//   forward: grid over tiles of the compacted list; each row's online softmax over its own
//            causal / window band; y = gate * O and lse at the row's position, y = 0 elsewhere.
//   backward, query side (grid over the compacted tiles): dO = gate * dy, D = dy . y, dgate =
//            D / gate, P recomputed from lse, dq; inactive rows keep dq = 0 and dgate = 0.
//   backward, key side (grid over key tiles): dk, dv, each key row owned by one warp that walks
//            the compacted query tiles whose band meets the key tile, in order (lane l = row).
// Inactive (token, head) pairs are never loaded, scored or summed. Limits: d, e <= 128.
#include <cmath>

#include "base/dtype.h"
#include "base/error.h"
#include "kernels/cuda/attention_flash_common.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scalar.cuh"
#include "kernels/cuda/smem_budget.h"
#include "kernels/cuda/warp_rows.cuh"
#include "kernels/gated_attention.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/memory.h"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

using namespace warp_rows;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarp;
constexpr int kRows = 32;     // active query rows of a tile (a warp takes kRows / kWarps of them)
constexpr int kKeys = kWarp;  // keys of a tile: one per lane
constexpr int kScanThreads = 256;
constexpr const char* kOp = "gated_attention (CUDA)";

template <typename D> struct Args {
  const D *q, *k, *v, *gates, *y, *dy;
  D *y_out, *dq, *dk, *dv, *dgates;
  float* lse;         // [B, H, T] at the query positions: written by the forward, read by the backward
  float* rowdot;      // [B * H, T] by active index: D = dy . y, from the query side to the key side
  const int* active;  // [B * H, T]: head bh's active positions, increasing, in its first count[bh] entries
  const int* count;   // [B * H]
  int T, N, H, d, e;  // queries, keys, heads, head widths
  float scale;
  flash::Band band;

  __device__ long long at(int b, int rows, int h, int width, int row) const {
    return ((static_cast<long long>(b) * rows + row) * H + h) * width;
  }
  __device__ long long gate_at(int b, int h, int t) const { return (static_cast<long long>(b) * T + t) * H + h; }
  __device__ float gate(int b, int h, int t) const { return to_f32(gates[gate_at(b, h, t)]); }
};

// Lists head blockIdx.x's active query positions: chunk by chunk, each thread's token lands at the
// count of active tokens before it (earlier chunks, earlier warps, earlier lanes).
template <typename D>
__global__ void __launch_bounds__(kScanThreads) compact_kernel(const D* gates, int T, int H, int* active, int* count) {
  __shared__ int warp_counts[kScanThreads / kWarp];
  __shared__ int base;
  const int bh = blockIdx.x, b = bh / H, h = bh % H, lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (threadIdx.x == 0) base = 0;
  __syncthreads();
  for (int t0 = 0; t0 < T; t0 += kScanThreads) {
    const int t = t0 + threadIdx.x;
    const bool on = t < T && to_f32(gates[(static_cast<long long>(b) * T + t) * H + h]) != 0.f;
    const unsigned ballot = __ballot_sync(0xffffffffu, on);
    if (lane == 0) warp_counts[warp] = __popc(ballot);
    __syncthreads();
    int before = base + __popc(ballot & ((1u << lane) - 1u));
    for (int w = 0; w < warp; ++w) before += warp_counts[w];
    if (on) active[static_cast<long long>(bh) * T + before] = t;
    __syncthreads();  // base and warp_counts are read by every thread before they change
    if (threadIdx.x == 0)
      for (int w = 0; w < kScanThreads / kWarp; ++w) base += warp_counts[w];
    __syncthreads();
  }
  if (threadIdx.x == 0) count[bh] = base;
}

// The smem layout of a tile of active queries and a key tile; padded strides where a lane reads a
// row of its own (conflict-free).
struct Smem {
  float *q, *x, *k, *v;  // q [kRows, d + 1], x (gate dy) [kRows, e + 1], k [kKeys, d + 1], v [kKeys, e + 1]
  float *lse, *rowdot;   // [kRows]
  int* pos;              // [kRows]: the rows' query positions
  __device__ Smem(float* base, int d, int e) {
    q = base;
    x = q + kRows * (d + 1);
    k = x + kRows * (e + 1);
    v = k + kKeys * (d + 1);
    lse = v + kKeys * (e + 1);
    rowdot = lse + kRows;
    pos = reinterpret_cast<int*>(rowdot + kRows);
  }
  static size_t bytes(int d, int e) {
    return sizeof(float) * (static_cast<size_t>(kRows) * (d + 1 + e + 1) + kKeys * (d + 1 + e + 1) + 2 * kRows) +
           sizeof(int) * kRows;
  }
};

// A query-side block's tile: active rows [i0, i0 + nr) (blockIdx.x) of head (b, h) (blockIdx.y),
// nr <= 0 when the head has fewer active rows; and this thread's lane and warp.
struct ActiveTile {
  int i0, bh, b, h, nr, lane, warp;
  template <typename D>
  __device__ explicit ActiveTile(const Args<D>& a)
      : i0(blockIdx.x * kRows), bh(blockIdx.y), b(bh / a.H), h(bh % a.H), nr(min(kRows, a.count[bh] - i0)),
        lane(threadIdx.x % kWarp), warp(threadIdx.x / kWarp) {}
};

// Active rows [i0, i0 + nr) of head (b, h): positions into sm.pos, q rows into sm.q and, when
// with_dout, gate * dy rows into sm.x (rows past nr zero).
template <typename D>
__device__ void load_active_rows(const Args<D>& a, const Smem& sm, int bh, int b, int h, int i0, int nr,
                                 bool with_dout) {
  const int* positions = a.active + static_cast<long long>(bh) * a.T + i0;
  for (int r = threadIdx.x; r < kRows; r += blockDim.x) sm.pos[r] = r < nr ? positions[r] : 0;
  for (int i = threadIdx.x; i < kRows * a.d; i += blockDim.x) {
    const int r = i / a.d, c = i % a.d;
    sm.q[r * (a.d + 1) + c] = r < nr ? to_f32(a.q[a.at(b, a.T, h, a.d, positions[r]) + c]) : 0.f;
  }
  if (!with_dout) return;
  for (int i = threadIdx.x; i < kRows * a.e; i += blockDim.x) {
    const int r = i / a.e, c = i % a.e;
    sm.x[r * (a.e + 1) + c] =
        r < nr ? a.gate(b, h, positions[r]) * to_f32(a.dy[a.at(b, a.T, h, a.e, positions[r]) + c]) : 0.f;
  }
}

// Keys [k0, k0 + nc) of head (b, h) into the tile (zero rows past nc), once every thread is done
// with the previous tile.
template <typename D>
__device__ void load_key_tile(const Args<D>& a, const Smem& sm, int b, int h, int k0, int nc) {
  __syncthreads();
  load_rows(sm.k, a.d + 1, a.k, b, a.N, a.H, h, a.d, k0, kKeys, nc);
  load_rows(sm.v, a.e + 1, a.v, b, a.N, a.H, h, a.e, k0, kKeys, nc);
  __syncthreads();
}

// Row t's attended columns [lo, hi) of key tile [k0, k0 + nc) (empty when lo >= hi).
struct Columns {
  int lo, hi;
  __device__ Columns(const flash::Band& band, int t, int k0, int nc)
      : lo(min(max(band.first_key(t) - k0, 0), nc)), hi(min(max(band.last_key(t) + 1 - k0, 0), nc)) {}
};

// Whether any of the tile's rows attends a key of [k0, k0 + nc): with a sliding window, active
// queries far apart leave key tiles between their bands that none of them sees. The same answer
// in every thread (read from smem), so blocks skip tiles together.
__device__ bool tile_attended(const flash::Band& band, const int* pos, int nr, int k0, int nc) {
  for (int r = 0; r < nr; ++r) {
    const Columns c(band, pos[r], k0, nc);
    if (c.lo < c.hi) return true;
  }
  return false;
}

// Walks the key tiles that the active tile's rows [0, nr) attend, loading each into sm (every
// thread of the block calls it), and calls row_step(i, r, columns, nc, lane) for each row
// r = warp * kMine + i of this warp that sees a key of the tile (nc keys).
template <int kMine, typename D, typename RowStep>
__device__ __forceinline__ void walk_key_tiles(const Args<D>& a, const Smem& sm, int b, int h, int nr, int warp,
                                               RowStep&& row_step) {
  const int k_begin = a.band.first_key(sm.pos[0]), k_end = a.band.last_key(sm.pos[nr - 1]) + 1;
  for (int k0 = k_begin; k0 < k_end; k0 += kKeys) {
    const int nc = min(kKeys, k_end - k0);
    if (!tile_attended(a.band, sm.pos, nr, k0, nc)) continue;  // block-uniform
    load_key_tile(a, sm, b, h, k0, nc);
#pragma unroll
    for (int i = 0; i < kMine; ++i) {
      const int r = warp * kMine + i;
      if (r >= nr) continue;  // warp-uniform
      const Columns cols(a.band, sm.pos[r], k0, nc);
      if (cols.lo < cols.hi) row_step(i, r, cols, nc, static_cast<int>(threadIdx.x) % kWarp);  // warp-uniform
    }
  }
}

template <typename D>
__global__ void __launch_bounds__(kThreads) forward_kernel(Args<D> a) {
  extern __shared__ float smem[];
  const Smem sm(smem, a.d, a.e);
  const auto [i0, bh, b, h, nr, lane, warp] = ActiveTile(a);
  if (nr <= 0) return;  // block-uniform
  const int dp = a.d + 1, ep = a.e + 1;
  load_active_rows(a, sm, bh, b, h, i0, nr, false);
  __syncthreads();
  constexpr int kMine = kRows / kWarps;
  float m[kMine], l[kMine], acc[kMine][kCols];
#pragma unroll
  for (int i = 0; i < kMine; ++i) {
    m[i] = -INFINITY, l[i] = 0.f;
#pragma unroll
    for (int c = 0; c < kCols; ++c) acc[i][c] = 0.f;
  }
  walk_key_tiles<kMine>(a, sm, b, h, nr, warp, [&](int i, int r, const Columns& cols, int nc, int lane) {
    const bool in = lane >= cols.lo && lane < cols.hi;
    const float s = in ? a.scale * dot(sm.q + r * dp, sm.k + lane * dp, a.d) : -INFINITY;
    const float m_new = fmaxf(m[i], warp_max(s));
    const float p = in ? expf(s - m_new) : 0.f;
    const float alpha = expf(m[i] - m_new);  // 0 on the row's first tile (m = -inf)
    l[i] = l[i] * alpha + warp_sum(p);
    m[i] = m_new;
#pragma unroll
    for (int c = 0; c < kCols; ++c) acc[i][c] *= alpha;
    add_weighted_rows(acc[i], p, nc, sm.v, ep, a.e, lane);
  });
  // Every query attends at least one key, so l > 0.
#pragma unroll
  for (int i = 0; i < kMine; ++i) {
    const int r = warp * kMine + i;
    if (r >= nr) continue;
    const int t = sm.pos[r];
    store_row(a.y_out + a.at(b, a.T, h, a.e, t), acc[i], a.gate(b, h, t) / l[i], a.e, lane);
    if (lane == 0) a.lse[static_cast<long long>(bh) * a.T + t] = m[i] + logf(l[i]);
  }
}

// Backward, query side: per active row, D = dy . y and dgate = D / gate; then P recomputed
// against the key tiles, dq accumulated in the lane's columns.
template <typename D>
__global__ void __launch_bounds__(kThreads) query_grad_kernel(Args<D> a) {
  extern __shared__ float smem[];
  const Smem sm(smem, a.d, a.e);
  const auto [i0, bh, b, h, nr, lane, warp] = ActiveTile(a);
  if (nr <= 0) return;  // block-uniform
  const int dp = a.d + 1, ep = a.e + 1;
  load_active_rows(a, sm, bh, b, h, i0, nr, true);
  __syncthreads();
  constexpr int kMine = kRows / kWarps;
  float dq[kMine][kCols];
#pragma unroll
  for (int i = 0; i < kMine; ++i) {
    const int r = warp * kMine + i;
#pragma unroll
    for (int c = 0; c < kCols; ++c) dq[i][c] = 0.f;
    if (r >= nr) continue;
    const int t = sm.pos[r];
    float yr[kCols], dyr[kCols];
    row_to_regs(a.y + a.at(b, a.T, h, a.e, t), a.e, lane, yr);
    row_to_regs(a.dy + a.at(b, a.T, h, a.e, t), a.e, lane, dyr);
    float partial = 0.f;
#pragma unroll
    for (int c = 0; c < kCols; ++c) partial = fmaf(dyr[c], yr[c], partial);
    const float rd = warp_sum(partial);
    if (lane == 0) {
      sm.rowdot[r] = rd;
      sm.lse[r] = a.lse[static_cast<long long>(bh) * a.T + t];
      a.rowdot[static_cast<long long>(bh) * a.T + i0 + r] = rd;
      a.dgates[a.gate_at(b, h, t)] = from_f32<D>(rd / a.gate(b, h, t));
    }
  }
  __syncthreads();  // the row statistics are read by every lane
  walk_key_tiles<kMine>(a, sm, b, h, nr, warp, [&](int i, int r, const Columns& cols, int nc, int lane) {
    float ds = 0.f;
    if (lane >= cols.lo && lane < cols.hi) {
      const float p = expf(a.scale * dot(sm.q + r * dp, sm.k + lane * dp, a.d) - sm.lse[r]);
      ds = p * (dot(sm.x + r * ep, sm.v + lane * ep, a.e) - sm.rowdot[r]);
    }
    add_weighted_rows(dq[i], ds, nc, sm.k, dp, a.d, lane);
  });
#pragma unroll
  for (int i = 0; i < kMine; ++i) {
    const int r = warp * kMine + i;
    if (r >= nr) continue;
    store_row(a.dq + a.at(b, a.T, h, a.d, sm.pos[r]), dq[i], a.scale, a.d, lane);
  }
}

// The first index of positions[0, n) (increasing) holding a value >= t (n when none does).
__device__ int first_at_least(const int* positions, int n, int t) {
  int lo = 0, hi = n;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (positions[mid] < t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

// Backward, key side: warp w owns keys j0 + w, j0 + w + kWarps, ... of the tile and walks the
// active query tiles whose positions can see a key of the tile, in order; lane l takes row i0 + l.
template <typename D>
__global__ void __launch_bounds__(kThreads) key_grad_kernel(Args<D> a) {
  extern __shared__ float smem[];
  const Smem sm(smem, a.d, a.e);
  const int j0 = blockIdx.x * kKeys, bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
  const int nc = min(kKeys, a.N - j0), lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int dp = a.d + 1, ep = a.e + 1;
  load_rows(sm.k, dp, a.k, b, a.N, a.H, h, a.d, j0, kKeys, nc);
  load_rows(sm.v, ep, a.v, b, a.N, a.H, h, a.e, j0, kKeys, nc);
  constexpr int kMine = kKeys / kWarps;
  float dks[kMine][kCols], dvs[kMine][kCols];
#pragma unroll
  for (int i = 0; i < kMine; ++i) {
#pragma unroll
    for (int c = 0; c < kCols; ++c) dks[i][c] = dvs[i][c] = 0.f;
  }
  // The active rows whose positions lie in [first_query(j0), last_query(j0 + nc - 1)]: the only
  // ones that may see a key of the tile (rows seeing some of its keys but not all are masked).
  const int* positions = a.active + static_cast<long long>(bh) * a.T;
  const int n_active = a.count[bh];
  const int i_begin = first_at_least(positions, n_active, a.band.first_query(j0));
  const int i_end = first_at_least(positions, n_active, a.band.last_query(j0 + nc - 1) + 1);
  for (int i0 = i_begin; i0 < i_end; i0 += kRows) {
    const int nr = min(kRows, i_end - i0);
    __syncthreads();  // the previous query tile is no longer read
    load_active_rows(a, sm, bh, b, h, i0, nr, true);
    for (int r = threadIdx.x; r < kRows; r += blockDim.x) {
      sm.lse[r] = r < nr ? a.lse[static_cast<long long>(bh) * a.T + positions[i0 + r]] : 0.f;
      sm.rowdot[r] = r < nr ? a.rowdot[static_cast<long long>(bh) * a.T + i0 + r] : 0.f;
    }
    __syncthreads();
    const int t = lane < nr ? sm.pos[lane] : a.T;  // a.T: attends nothing
#pragma unroll
    for (int i = 0; i < kMine; ++i) {
      const int jl = warp + kWarps * i, j = j0 + jl;
      if (jl >= nc) continue;  // warp-uniform
      add_key_row_grads(a.band.attends(t, j), sm.k + jl * dp, sm.v + jl * ep, sm.q, sm.x, sm.lse, sm.rowdot, a.d, a.e,
                        a.scale, nr, lane, dks[i], dvs[i]);
    }
  }
#pragma unroll
  for (int i = 0; i < kMine; ++i) {
    const int jl = warp + kWarps * i, j = j0 + jl;
    if (jl >= nc) continue;
    store_row(a.dk + a.at(b, a.N, h, a.d, j), dks[i], a.scale, a.d, lane);
    store_row(a.dv + a.at(b, a.N, h, a.e, j), dvs[i], 1.f, a.e, lane);
  }
}

template <typename D>
Args<D> make_args(const AttentionDims& dims) {
  EAT_CHECK(dims.qk_dim <= kMaxWidth && dims.v_dim <= kMaxWidth, kOp, ": head widths up to ", kMaxWidth,
            ", got d = ", dims.qk_dim, ", e = ", dims.v_dim);
  constexpr int64_t kPositions = int64_t{1} << 30;
  EAT_CHECK(dims.seq < kPositions && dims.key_len() < kPositions && dims.query_offset < kPositions, kOp, ": ",
            dims.seq, " queries at offset ", dims.query_offset, " and ", dims.key_len(),
            " keys: positions must fit in 30 bits");
  EAT_CHECK(dims.batch * dims.heads <= 65535, kOp, ": B * H = ", dims.batch * dims.heads,
            " exceeds the grid limit of 65535");
  Args<D> a{};
  a.T = static_cast<int>(dims.seq), a.N = static_cast<int>(dims.key_len()), a.H = static_cast<int>(dims.heads);
  a.d = static_cast<int>(dims.qk_dim), a.e = static_cast<int>(dims.v_dim);
  a.scale = static_cast<float>(dims.scale);
  a.band = flash::Band{a.T, a.N, static_cast<int>(dims.query_offset), static_cast<int>(flash::device_window(dims)),
                       dims.causal};
  return a;
}

// Launches `kernel` over a grid of (tiles, B * H) with the dynamic smem of the tiles.
template <typename D>
void launch(void (*kernel)(Args<D>), const Args<D>& a, int64_t tiles, int64_t heads) {
  const size_t bytes = Smem::bytes(a.d, a.e);
  EAT_CHECK(bytes <= static_cast<size_t>(smem_budget()), kOp, ": needs ", bytes,
            " bytes of shared memory, the device allows ", smem_budget());
  EAT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  kernel<<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(heads)), kThreads, bytes, compute_stream()>>>(a);
  EAT_CUDA_CHECK_LAUNCH();
}

// The active lists of every head (Args::active and Args::count), in device scratch freed by the
// destructor: after the launches that read it are queued, which the allocator orders.
struct ActiveLists {
  int* active = nullptr;
  int* count = nullptr;
  template <typename D>
  ActiveLists(const D* gates, int64_t heads, int T, int H) {
    active = static_cast<int*>(device_alloc(static_cast<size_t>(heads * T) * sizeof(int)));
    count = static_cast<int*>(device_alloc(static_cast<size_t>(heads) * sizeof(int)));
    compact_kernel<D><<<static_cast<unsigned>(heads), kScanThreads, 0, compute_stream()>>>(gates, T, H, active, count);
    EAT_CUDA_CHECK_LAUNCH();
  }
  ~ActiveLists() {
    device_free(active);
    device_free(count);
  }
  ActiveLists(const ActiveLists&) = delete;
  ActiveLists& operator=(const ActiveLists&) = delete;
};

}  // namespace

template <typename T>
void gated_attention_forward(const AttentionDims& dims, const T* q, const T* k, const T* v, const T* gates, T* y,
                             RowStat* lse) {
  const int64_t heads = dims.batch * dims.heads;
  if (heads * dims.seq == 0) return;
  using D = device_t<T>;
  Args<D> a = make_args<D>(dims);
  // Inactive rows: y = 0 (and a log-sum-exp nobody reads); the kernel writes the active ones.
  zero(y, static_cast<size_t>(heads * dims.seq * dims.v_dim) * sizeof(T));
  zero(lse, static_cast<size_t>(heads * dims.seq) * sizeof(float));
  const ActiveLists lists(dev(gates), heads, a.T, a.H);
  a.q = dev(q), a.k = dev(k), a.v = dev(v), a.gates = dev(gates), a.y_out = dev(y), a.lse = lse;
  a.active = lists.active, a.count = lists.count;
  launch<D>(forward_kernel<D>, a, (dims.seq + kRows - 1) / kRows, heads);
}

template <typename T>
void gated_attention_backward(const AttentionDims& dims, const T* q, const T* k, const T* v, const T* gates,
                              const T* y, const RowStat* lse, const T* dy, T* dq, T* dk, T* dv, T* dgates) {
  using D = device_t<T>;
  const int64_t heads = dims.batch * dims.heads;
  // Inactive rows get no gradient; the query side writes the active ones.
  zero(dq, static_cast<size_t>(heads * dims.seq * dims.qk_dim) * sizeof(T));
  zero(dgates, static_cast<size_t>(heads * dims.seq) * sizeof(T));
  if (heads * dims.seq == 0) {  // no query sees a key (the key side writes every key row otherwise)
    zero(dk, static_cast<size_t>(heads * dims.key_len() * dims.qk_dim) * sizeof(T));
    zero(dv, static_cast<size_t>(heads * dims.key_len() * dims.v_dim) * sizeof(T));
    return;
  }
  Args<D> a = make_args<D>(dims);
  const ActiveLists lists(dev(gates), heads, a.T, a.H);
  a.q = dev(q), a.k = dev(k), a.v = dev(v), a.gates = dev(gates), a.y = dev(y), a.dy = dev(dy);
  a.dq = dev(dq), a.dk = dev(dk), a.dv = dev(dv), a.dgates = dev(dgates);
  a.lse = const_cast<float*>(lse);  // read only by the backward kernels
  a.active = lists.active, a.count = lists.count;
  a.rowdot = static_cast<float*>(device_alloc(static_cast<size_t>(heads * dims.seq) * sizeof(float)));
  launch<D>(query_grad_kernel<D>, a, (dims.seq + kRows - 1) / kRows, heads);
  launch<D>(key_grad_kernel<D>, a, (dims.key_len() + kKeys - 1) / kKeys, heads);
  device_free(a.rowdot);
}

EAT_GATED_ATTENTION_INSTANTIATE(float)
EAT_GATED_ATTENTION_INSTANTIATE(bf16)
#undef EAT_INSTANTIATE

}  // namespace eat::cuda
