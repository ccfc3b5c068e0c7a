// Flash attention forward: one thread block per (batch * head, query tile) walks the key tiles
// that hold at least one attended pair (the persistent keys' first), keeping the running row max
// m, the running sum l and the unnormalised output in shared memory (online softmax), and writes
// out = O / l and the row's log-sum-exp. Scores live in the log2 domain (scale * log2 e folded
// in) so every exponential is one exp2f.
#include <cmath>

#include "base/dtype.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/attention_flash_common.cuh"

namespace eat::cuda::flash {

namespace {

template <typename D, typename Tl> struct ForwardSmem {
  static constexpr int Br = Tl::fwd_q, Bc = Tl::fwd_k;
  SmemTile<D> q, k, v, p;  // Q [Br, dp], K [Bc, dp], V [Bc, ep], probabilities [Br, Bc]
  SmemTile<float> s, o;    // scores [Br, Bc], unnormalised output [Br, ep]
  float *m, *l;            // running max (log2 domain) and sum per row
  __host__ __device__ ForwardSmem(SmemCarver& c, int dp, int ep) {
    q = SmemTile<D>::template make<D>(c, Br, dp);
    k = SmemTile<D>::template make<D>(c, Bc, dp);
    v = SmemTile<D>::template make<D>(c, Bc, ep);
    p = SmemTile<D>::template make<D>(c, Br, Bc);
    s = SmemTile<float>::template make<D>(c, Br, Bc);
    o = SmemTile<float>::template make<D>(c, Br, ep);
    m = c.take<float>(Br);
    l = c.take<float>(Br);
  }
};

template <typename D, typename Tl>
__global__ void __launch_bounds__(kThreads) forward_kernel(Params<D> P) {
  using S = ForwardSmem<D, Tl>;
  constexpr int Br = S::Br, Bc = S::Bc;
  const S sm = smem_layout<S>(P.dp, P.ep);
  const Band& band = P.band;
  const int bh = blockIdx.x, b = bh / P.heads, h = bh % P.heads;
  // Under the causal mask later query tiles have more work: launch them first.
  const int q0 = (gridDim.y - 1 - blockIdx.y) * Br, nr = min(Br, band.seq - q0);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;

  load_tile(sm.q, P.q + P.query_row(b, h, q0, P.d), int64_t{P.heads} * P.d, Br, nr, P.dp, P.d);
  fill_tile(sm.o, Br, P.ep, 0.f);
  for (int r = threadIdx.x; r < Br; r += blockDim.x) {
    sm.m[r] = -INFINITY;
    sm.l[r] = 0.f;
  }

  // The persistent key tiles, then the band's, hold every attended key of this query tile.
  const QueryTileKeys key_tiles(band, q0, nr, Bc);
  for (int j = 0; j < key_tiles.count(); ++j) {
    const KeyTile tile = key_tiles(band, j, Bc);
    __syncthreads();  // the previous step's product has finished reading K, V and P
    load_tile(sm.k, P.k + P.key_row(b, h, tile.row, P.d), int64_t{P.heads} * P.d, Bc, tile.nc, P.dp, P.d);
    load_tile(sm.v, P.v + P.key_row(b, h, tile.row, P.e), int64_t{P.heads} * P.e, Bc, tile.nc, P.ep, P.e);
    __syncthreads();
    tile_gemm<false, true>(sm.s, sm.q, sm.k, Br, Bc, P.dp, false);  // S = Q K^T
    __syncthreads();
    // Online softmax, one warp per row: fold this tile into the row's max and sum and rescale the
    // output accumulated so far when the max grows. Row r always belongs to the same warp, so m
    // and l need no block-wide fence.
    for (int r = warp; r < Br; r += warps) {
      const int t = q0 + r;
      float x[Bc / 32];
      float tile_max = -INFINITY;
#pragma unroll
      for (int i = 0; i < Bc / 32; ++i) {
        const int c = lane + 32 * i;
        x[i] = tile.attended(band, t, c) ? sm.s.at(r, c) * P.scale_log2 : -INFINITY;
        tile_max = fmaxf(tile_max, x[i]);
      }
      tile_max = warp_max(tile_max);
      const float m_old = sm.m[r];
      if (tile_max == -INFINITY) {  // the row sees no key of this tile (or is past the end)
#pragma unroll
        for (int i = 0; i < Bc / 32; ++i) sm.p.at(r, lane + 32 * i) = from_f32<D>(0.f);
        continue;
      }
      const float m_new = fmaxf(m_old, tile_max);
      const float rescale = exp2f(m_old - m_new);  // 0 on the row's first tile (m_old = -inf)
      float sum = 0.f;
#pragma unroll
      for (int i = 0; i < Bc / 32; ++i) {
        const float p = exp2f(x[i] - m_new);  // exp2(-inf) = 0 outside the band
        sum += p;
        sm.p.at(r, lane + 32 * i) = from_f32<D>(p);
      }
      sum = warp_sum(sum);
      for (int c = lane; c < P.ep; c += 32) sm.o.at(r, c) *= rescale;
      __syncwarp();  // every lane has read m[r] before lane 0 overwrites it
      if (lane == 0) {
        sm.m[r] = m_new;
        sm.l[r] = sm.l[r] * rescale + sum;
      }
    }
    __syncthreads();
    tile_gemm<false, false>(sm.o, sm.p, sm.v, Br, P.ep, Bc, true);  // O += P V
  }
  __syncthreads();

  // Every query attends at least one key (its own, or all of them), so l > 0.
  for (int i = threadIdx.x; i < nr * P.e; i += blockDim.x) {
    const int r = i / P.e, c = i % P.e;
    P.out_w[P.query_row(b, h, q0 + r, P.e) + c] = from_f32<D>(sm.o.at(r, c) / sm.l[r]);
  }
  for (int r = threadIdx.x; r < nr; r += blockDim.x)
    P.lse_w[static_cast<int64_t>(bh) * band.seq + q0 + r] = (sm.m[r] + log2f(sm.l[r])) * 0.6931471805599453f;
}

}  // namespace

}  // namespace eat::cuda::flash

namespace eat::cuda {

template <typename T>
void attention_flash_forward(const T* q, const T* k, const T* v, T* out, float* lse, const AttentionDims& dims) {
  const cudaStream_t stream = compute_stream();
  using D = device_t<T>;
  if (dims.batch * dims.heads * dims.seq == 0) return;
  flash::Params<D> p = flash::make_params<D>(dims);
  p.q = dev(q);
  p.k = dev(k);
  p.v = dev(v);
  p.out_w = dev(out);
  p.lse_w = lse;
  flash::with_fitting_tiles<D, flash::ForwardSmem>(p.dp, p.ep, [&](auto tiles) {
    using Tl = decltype(tiles);
    auto kernel = flash::forward_kernel<D, Tl>;
    const size_t smem = prepare_smem<flash::ForwardSmem<D, Tl>>(kernel, "attention forward (CUDA)", p.dp, p.ep);
    kernel<<<flash::grid_of(dims, flash::tiles_of(dims.seq, Tl::fwd_q)), flash::kThreads, smem, stream>>>(p);
    EAT_CUDA_CHECK_LAUNCH();
  });
}

template void attention_flash_forward<float>(const float*, const float*, const float*, float*, float*,
                                             const AttentionDims&);
template void attention_flash_forward<bf16>(const bf16*, const bf16*, const bf16*, bf16*, float*,
                                            const AttentionDims&);

}  // namespace eat::cuda
