// Flash attention backward. With P = exp(scale Q K^T - L) rebuilt from the forward's row
// log-sum-exp L, and rowdot_t = dO_t . O_t:
//     dV = P^T dO,  dS = P o (dO V^T - rowdot),  dK = scale dS^T Q,  dQ = scale dS K.
// Two kernels, each the sole writer of its outputs (no atomics, deterministic):
//  - key pass: one thread block per (batch * head, key tile: the persistent keys' tiles, then the
//    sequence's) walks the query tiles that see it (all of them for persistent keys),
//    accumulating dK and dV for its keys in shared memory;
//  - query pass: one thread block per (batch * head, query tile) walks its key tiles for dQ.
// Both recompute S and dO V^T; that is the price of having no atomics.
#include "base/dtype.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/attention_flash_common.cuh"

namespace eat::cuda::flash {

namespace {

// Blocks of the rowdot kernel: 8 warps each, 16,384 rows a sweep of the grid, enough to fill any
// GPU; the kernel loops over the grid for the rest.
inline constexpr int kRowdotBlocks = 2048;

// rowdot[bh, t] = dO_t . O_t in f32, one warp per row, the grid striding over the rows.
template <typename D>
__global__ void __launch_bounds__(kThreads) rowdot_kernel(Params<D> P, float* rowdot, int64_t rows) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * blockDim.x / 32;
  for (int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; row < rows; row += warps) {
    const int t = static_cast<int>(row % P.band.seq);
    const int64_t bh = row / P.band.seq;
    const int64_t at = P.query_row(static_cast<int>(bh / P.heads), static_cast<int>(bh % P.heads), t, P.e);
    float acc = 0.f;
    for (int c = lane; c < P.e; c += 32) acc = fmaf(to_f32(P.dout[at + c]), to_f32(P.out[at + c]), acc);
    acc = warp_sum(acc);
    if (lane == 0) rowdot[row] = acc;
  }
}

// The tiles of one (query tile, key tile) step, shared by both passes.
template <typename D> struct StepSmem {
  SmemTile<D> q, dout, k, v, ds;  // Q [Br, dp], dO [Br, ep], K [Bc, dp], V [Bc, ep], dS [Br, Bc]
  SmemTile<float> s, dp;          // scores and dO V^T [Br, Bc]
  float *lse2, *rowdot;           // per query row: L in the log2 domain, dO . O
  __host__ __device__ StepSmem(SmemCarver& c, int Br, int Bc, int dp_, int ep) {
    q = SmemTile<D>::template make<D>(c, Br, dp_);
    dout = SmemTile<D>::template make<D>(c, Br, ep);
    k = SmemTile<D>::template make<D>(c, Bc, dp_);
    v = SmemTile<D>::template make<D>(c, Bc, ep);
    ds = SmemTile<D>::template make<D>(c, Br, Bc);
    s = SmemTile<float>::template make<D>(c, Br, Bc);
    dp = SmemTile<float>::template make<D>(c, Br, Bc);
    lse2 = c.take<float>(Br);
    rowdot = c.take<float>(Br);
  }
};

template <typename D>
__device__ void load_query_side(const Params<D>& P, const StepSmem<D>& sm, int b, int h, int q0, int Br) {
  const int nr = min(Br, P.band.seq - q0);
  load_tile(sm.q, P.q + P.query_row(b, h, q0, P.d), int64_t{P.heads} * P.d, Br, nr, P.dp, P.d);
  load_tile(sm.dout, P.dout + P.query_row(b, h, q0, P.e), int64_t{P.heads} * P.e, Br, nr, P.ep, P.e);
  const int64_t row0 = static_cast<int64_t>(b * P.heads + h) * P.band.seq + q0;
  for (int r = threadIdx.x; r < Br; r += blockDim.x) {
    sm.lse2[r] = r < nr ? P.lse[row0 + r] * kLog2e : 0.f;
    sm.rowdot[r] = r < nr ? P.rowdot[row0 + r] : 0.f;
  }
}

template <typename D>
__device__ void load_key_side(const Params<D>& P, const StepSmem<D>& sm, int b, int h, const KeyTile& tile, int Bc) {
  load_tile(sm.k, P.k + P.key_row(b, h, tile.row, P.d), int64_t{P.heads} * P.d, Bc, tile.nc, P.dp, P.d);
  load_tile(sm.v, P.v + P.key_row(b, h, tile.row, P.e), int64_t{P.heads} * P.e, Bc, tile.nc, P.ep, P.e);
}

// With Q, dO, K, V, L and rowdot loaded: S = Q K^T and dP = dO V^T, then P (into p when given)
// and dS = P o (dP - rowdot), both zero outside the band. Fences before and after.
template <typename D>
__device__ void probabilities_and_dscores(const Params<D>& P, const StepSmem<D>& sm, SmemTile<D>* p, int q0,
                                          const KeyTile& tile, int Br, int Bc) {
  __syncthreads();
  tile_gemm<false, true>(sm.s, sm.q, sm.k, Br, Bc, P.dp, false);
  tile_gemm<false, true>(sm.dp, sm.dout, sm.v, Br, Bc, P.ep, false);
  __syncthreads();
  for (int i = threadIdx.x; i < Br * Bc; i += blockDim.x) {
    const int r = i / Bc, c = i % Bc;
    float prob = 0.f, ds = 0.f;
    if (tile.attended(P.band, q0 + r, c)) {
      prob = exp2f(sm.s.at(r, c) * P.scale_log2 - sm.lse2[r]);
      ds = prob * (sm.dp.at(r, c) - sm.rowdot[r]);
    }
    if (p) p->at(r, c) = from_f32<D>(prob);
    sm.ds.at(r, c) = from_f32<D>(ds);
  }
  __syncthreads();
}

template <typename D, typename Tl> struct KeyPassSmem {
  static constexpr int Br = Tl::kv_q, Bc = Tl::kv_k;
  StepSmem<D> step;
  SmemTile<D> p;              // probabilities [Br, Bc]
  SmemTile<float> dk, dv;     // accumulators [Bc, dp], [Bc, ep]
  __host__ __device__ KeyPassSmem(SmemCarver& c, int dp_, int ep) : step(c, Br, Bc, dp_, ep) {
    p = SmemTile<D>::template make<D>(c, Br, Bc);
    dk = SmemTile<float>::template make<D>(c, Bc, dp_);
    dv = SmemTile<float>::template make<D>(c, Bc, ep);
  }
};

template <typename D, typename Tl>
__global__ void __launch_bounds__(kThreads) key_pass_kernel(Params<D> P) {
  using S = KeyPassSmem<D, Tl>;
  constexpr int Br = S::Br, Bc = S::Bc;
  const S sm = smem_layout<S>(P.dp, P.ep);
  const Band& band = P.band;
  const int bh = blockIdx.x, b = bh / P.heads, h = bh % P.heads;
  const KeyTile tile = KeyTile::of(band, blockIdx.y, Bc);
  load_key_side(P, sm.step, b, h, tile, Bc);
  fill_tile(sm.dk, Bc, P.dp, 0.f);
  fill_tile(sm.dv, Bc, P.ep, 0.f);
  // Query tiles [first, end) hold every query that sees a key of this tile (all of them for
  // persistent keys); the range may be empty (keys after the last local query) or hold only
  // masked pairs (the window's far side), which contribute zeros.
  const int first = tile.persistent ? 0 : band.first_query(tile.k0) / Br;
  const int end = tile.persistent ? (band.seq + Br - 1) / Br : band.last_query(tile.k0 + tile.nc - 1) / Br + 1;
  for (int qt = first; qt < end && qt * Br < band.seq; ++qt) {
    const int q0 = qt * Br;
    __syncthreads();  // the previous step's products have finished reading Q, dO, P and dS
    load_query_side(P, sm.step, b, h, q0, Br);
    SmemTile<D> p = sm.p;
    probabilities_and_dscores(P, sm.step, &p, q0, tile, Br, Bc);
    tile_gemm<true, false>(sm.dv, sm.p, sm.step.dout, Bc, P.ep, Br, true);  // dV += P^T dO
    tile_gemm<true, false>(sm.dk, sm.step.ds, sm.step.q, Bc, P.dp, Br, true);  // dK += dS^T Q
  }
  __syncthreads();
  if (P.dk) store_tile(P.dk + P.key_row(b, h, tile.row, P.d), int64_t{P.heads} * P.d, sm.dk, tile.nc, P.d, P.scale);
  if (P.dv) store_tile(P.dv + P.key_row(b, h, tile.row, P.e), int64_t{P.heads} * P.e, sm.dv, tile.nc, P.e);
}

template <typename D, typename Tl> struct QueryPassSmem {
  static constexpr int Br = Tl::dq_q, Bc = Tl::dq_k;
  StepSmem<D> step;
  SmemTile<float> dq;  // accumulator [Br, dp]
  __host__ __device__ QueryPassSmem(SmemCarver& c, int dp_, int ep) : step(c, Br, Bc, dp_, ep) {
    dq = SmemTile<float>::template make<D>(c, Br, dp_);
  }
};

template <typename D, typename Tl>
__global__ void __launch_bounds__(kThreads) query_pass_kernel(Params<D> P) {
  using S = QueryPassSmem<D, Tl>;
  constexpr int Br = S::Br, Bc = S::Bc;
  const S sm = smem_layout<S>(P.dp, P.ep);
  const Band& band = P.band;
  const int bh = blockIdx.x, b = bh / P.heads, h = bh % P.heads;
  const int q0 = (gridDim.y - 1 - blockIdx.y) * Br, nr = min(Br, band.seq - q0);
  load_query_side(P, sm.step, b, h, q0, Br);
  fill_tile(sm.dq, Br, P.dp, 0.f);
  const QueryTileKeys key_tiles(band, q0, nr, Bc);
  for (int j = 0; j < key_tiles.count(); ++j) {
    const KeyTile tile = key_tiles(band, j, Bc);
    __syncthreads();  // the previous step's product has finished reading K and dS
    load_key_side(P, sm.step, b, h, tile, Bc);
    probabilities_and_dscores<D>(P, sm.step, nullptr, q0, tile, Br, Bc);
    tile_gemm<false, false>(sm.dq, sm.step.ds, sm.step.k, Br, P.dp, Bc, true);  // dQ += dS K
  }
  __syncthreads();
  store_tile(P.dq + P.query_row(b, h, q0, P.d), int64_t{P.heads} * P.d, sm.dq, nr, P.d, P.scale);
}

}  // namespace

}  // namespace eat::cuda::flash

namespace eat::cuda {

template <typename T>
void attention_flash_backward(const T* q, const T* k, const T* v, const T* out, const float* lse, const T* dout, T* dq,
                              T* dk, T* dv, float* rowdot, const AttentionDims& dims) {
  const cudaStream_t stream = compute_stream();
  using D = device_t<T>;
  namespace f = flash;
  if (!dq && !dk && !dv) return;
  f::Params<D> p = f::make_params<D>(dims);
  p.q = dev(q);
  p.k = dev(k);
  p.v = dev(v);
  p.out = dev(out);
  p.dout = dev(dout);
  p.lse = lse;
  p.rowdot = rowdot;
  p.dq = dev(dq);
  p.dk = dev(dk);
  p.dv = dev(dv);
  const int64_t rows = dims.batch * dims.heads * dims.seq;
  if (rows > 0) {
    f::rowdot_kernel<D><<<grid_for(rows * 32, f::kThreads, f::kRowdotBlocks), f::kThreads, 0, stream>>>(p, rowdot, rows);
    EAT_CUDA_CHECK_LAUNCH();
  }
  if ((dk || dv) && dims.batch * dims.heads * dims.key_rows() > 0) {
    f::with_fitting_tiles<D, f::KeyPassSmem>(p.dp, p.ep, [&](auto tiles) {
      using Tl = decltype(tiles);
      auto kernel = f::key_pass_kernel<D, Tl>;
      const size_t smem = prepare_smem<f::KeyPassSmem<D, Tl>>(kernel, "attention backward (CUDA)", p.dp, p.ep);
      const unsigned key_tiles = f::tiles_of(dims.prefix, Tl::kv_k) + f::tiles_of(dims.key_len(), Tl::kv_k);
      kernel<<<f::grid_of(dims, key_tiles), f::kThreads, smem, stream>>>(p);
      EAT_CUDA_CHECK_LAUNCH();
    });
  }
  if (dq && rows > 0) {
    f::with_fitting_tiles<D, f::QueryPassSmem>(p.dp, p.ep, [&](auto tiles) {
      using Tl = decltype(tiles);
      auto kernel = f::query_pass_kernel<D, Tl>;
      const size_t smem = prepare_smem<f::QueryPassSmem<D, Tl>>(kernel, "attention backward (CUDA)", p.dp, p.ep);
      kernel<<<f::grid_of(dims, f::tiles_of(dims.seq, Tl::dq_q)), f::kThreads, smem, stream>>>(p);
      EAT_CUDA_CHECK_LAUNCH();
    });
  }
}

template void attention_flash_backward<float>(const float*, const float*, const float*, const float*, const float*,
                                              const float*, float*, float*, float*, float*, const AttentionDims&);
template void attention_flash_backward<bf16>(const bf16*, const bf16*, const bf16*, const bf16*, const float*,
                                             const bf16*, bf16*, bf16*, bf16*, float*, const AttentionDims&);

}  // namespace eat::cuda
