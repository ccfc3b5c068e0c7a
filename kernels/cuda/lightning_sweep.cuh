#pragma once
// The chunk sweep behind every Lightning Attention-2 pass on the GPU (see lightning_chunked.cu for
// how the forward and the gradients map onto it) and the state readout (state_readout.cu):
//   forward sweep:  out_j = [(X_j Y_j^T) o M] Z_j + diag(lambda^(r+1)) X_j St,
//                   St   <- lambda^L St + (diag(lambda^(L-1-c)) Y_j)^T Z_j
//   reverse sweep:  out_j = [(X_j Y_j^T) o M]^T Z_j + diag(lambda^(L-1-c)) Y_j St,
//                   St   <- lambda^L St + (diag(lambda^(r+1)) X_j)^T Z_j
// over chunks j of L <= C rows, with M(r, c) = lambda^(r-c) for c <= r. A null Y or Z reads as
// zeros. The output columns (the state's columns) are split into slices, one thread block per
// (batch * head, slice): a column of St depends only on the same column of Z, so the slices are
// independent and every output element has one writer (no atomics, deterministic). The scores
// X Y^T are recomputed per slice; the f32 state stays in shared memory for the whole sweep.
#include <cmath>

#include "base/error.h"
#include "kernels/cuda/lightning_chunked.h"
#include "kernels/cuda/smem_tile.cuh"

namespace eat::cuda::lightning {

inline constexpr int kThreads = 256;
inline constexpr int C = static_cast<int>(kLightningChunk);

// Columns of the state per thread block: bf16 slices are wider (fewer recomputed score tiles),
// f32 ones narrower so the f32 tiles fit next to a 128-row state.
template <typename D> constexpr int slice_width() { return is_bf16_v<D> ? 64 : 32; }
// The slice width when the default one's layout does not fit smem_budget() (sm_86/sm_89, 101,376
// bytes: from d = 80 in bf16, 112 in f32). At d = 128 it takes 86,400 bytes in bf16 and 100,480 in
// f32. A column of the output and the state depends only on its own column of Z, and each 16-wide
// fragment sums in the same order whatever the slice, so only the number of blocks changes.
inline constexpr int kCompactSliceWidth = 16;

template <typename D> struct SweepArgs {
  const D *x, *y, *z;  // [B, T, H, wxy], [B, T, H, wxy], [B, T, H, wz]; y, z may be null (zeros)
  D* out;              // [B, T, H, wz], or null
  const D* init;       // the state entering the sweep, or null (zero)
  D* last;             // the state leaving it, or null
  bool transposed;     // init and last hold St^T: [B, H, wz, wxy] instead of [B, H, wxy, wz]
  int B, T, H, wxy, wz, pxy;  // pxy: wxy rounded up to the 16-wide fragment
  double decay[kLightningMaxHeads];

  __device__ int64_t row(int b, int h, int t, int w) const {
    return ((static_cast<int64_t>(b) * T + t) * H + h) * w;
  }
  // Element (i, j) of St in a [B, H, ...] state tensor.
  __device__ int64_t state_at(int bh, int i, int j) const {
    return static_cast<int64_t>(bh) * wxy * wz + (transposed ? static_cast<int64_t>(j) * wxy + i : static_cast<int64_t>(i) * wz + j);
  }
};

template <typename D, int SliceWidth> struct SweepSmem {
  static constexpr int W = SliceWidth;
  SmemTile<D> x, y, z;    // chunk rows: X, Y [C, pxy], Z's slice [C, W]
  SmemTile<float> a;      // X Y^T [C, C]
  SmemTile<D> aop;        // the masked scores as a product operand (f32: a itself)
  SmemTile<float> out;    // the chunk's output slice [C, W]
  SmemTile<float> st;     // the state slice [pxy, W]
  SmemTile<D> sop;        // the state as a product operand (f32: st itself)
  float* pw;              // lambda^0 .. lambda^C
  __host__ __device__ SweepSmem(SmemCarver& c, int pxy) {
    x = SmemTile<D>::template make<D>(c, C, pxy);
    y = SmemTile<D>::template make<D>(c, C, pxy);
    z = SmemTile<D>::template make<D>(c, C, W);
    a = SmemTile<float>::template make<D>(c, C, C);
    out = SmemTile<float>::template make<D>(c, C, W);
    st = SmemTile<float>::template make<D>(c, pxy, W);
    if constexpr (is_bf16_v<D>) {
      aop = SmemTile<D>::template make<D>(c, C, C);
      sop = SmemTile<D>::template make<D>(c, pxy, W);
    } else {
      aop = a;
      sop = st;
    }
    pw = c.take<float>(C + 1);
  }
};

template <typename D, int SliceWidth, bool Reverse>
__global__ void __launch_bounds__(kThreads) sweep_kernel(SweepArgs<D> A) {
  using S = SweepSmem<D, SliceWidth>;
  constexpr int W = S::W;
  const S sm = smem_layout<S>(A.pxy);
  const int bh = blockIdx.x, b = bh / A.H, h = bh % A.H;
  const int z0 = blockIdx.y * W, zw = min(W, A.wz - z0);
  const int pxy = A.pxy;

  // Powers from pow() in double, as the CPU kernel's table: the error does not grow with them.
  for (int i = threadIdx.x; i <= C; i += blockDim.x) sm.pw[i] = static_cast<float>(pow(A.decay[h], static_cast<double>(i)));
  for (int i = threadIdx.x; i < pxy * W; i += blockDim.x) {
    const int r = i / W, c = i % W;
    sm.st.at(r, c) = A.init && r < A.wxy && c < zw ? to_f32(A.init[A.state_at(bh, r, z0 + c)]) : 0.f;
    if constexpr (is_bf16_v<D>) sm.sop.at(r, c) = from_f32<D>(sm.st.at(r, c));
  }

  const int chunks = (A.T + C - 1) / C;
  for (int step = 0; step < chunks; ++step) {
    const int j = Reverse ? chunks - 1 - step : step;
    const int t0 = j * C, L = min(C, A.T - t0);
    __syncthreads();  // the previous chunk has finished reading x, y, z and the state operand
    load_tile(sm.x, A.x + A.row(b, h, t0, A.wxy), int64_t{A.H} * A.wxy, C, L, pxy, A.wxy);
    if (A.y)
      load_tile(sm.y, A.y + A.row(b, h, t0, A.wxy), int64_t{A.H} * A.wxy, C, L, pxy, A.wxy);
    else
      fill_tile(sm.y, C, pxy, from_f32<D>(0.f));
    if (A.z)
      load_tile(sm.z, A.z + A.row(b, h, t0, A.wz) + z0, int64_t{A.H} * A.wz, C, L, W, zw);
    else
      fill_tile(sm.z, C, W, from_f32<D>(0.f));
    __syncthreads();
    tile_gemm<false, true>(sm.a, sm.x, sm.y, C, C, pxy, false);  // X Y^T
    __syncthreads();
    // The decay mask on the scores; then X's rows take lambda^(r+1) (the decay from the state
    // entering the chunk to row r) and Y's rows lambda^(L-1-c) (from row c to the chunk's end).
    for (int i = threadIdx.x; i < C * C; i += blockDim.x) {
      const int r = i / C, c = i % C;
      sm.aop.at(r, c) = from_f32<D>(c <= r && r < L ? sm.a.at(r, c) * sm.pw[r - c] : 0.f);
    }
    for (int i = threadIdx.x; i < L * pxy; i += blockDim.x) {
      const int r = i / pxy, c = i % pxy;
      sm.x.at(r, c) = from_f32<D>(to_f32(sm.x.at(r, c)) * sm.pw[r + 1]);
      sm.y.at(r, c) = from_f32<D>(to_f32(sm.y.at(r, c)) * sm.pw[L - 1 - r]);
    }
    __syncthreads();
    tile_gemm<Reverse, false>(sm.out, sm.aop, sm.z, C, W, C, false);  // intra-chunk term
    __syncthreads();
    tile_gemm<false, false>(sm.out, Reverse ? sm.y : sm.x, sm.sop, C, W, pxy, true);  // state term
    __syncthreads();
    if (A.out) store_tile(A.out + A.row(b, h, t0, A.wz) + z0, int64_t{A.H} * A.wz, sm.out, L, zw);
    const float carry = sm.pw[L];
    for (int i = threadIdx.x; i < pxy * W; i += blockDim.x) sm.st.at(i / W, i % W) *= carry;
    __syncthreads();
    tile_gemm<true, false>(sm.st, Reverse ? sm.x : sm.y, sm.z, pxy, W, C, true);  // St += (decayed rows)^T Z
    if constexpr (is_bf16_v<D>) {
      __syncthreads();
      for (int i = threadIdx.x; i < pxy * W; i += blockDim.x) sm.sop.at(i / W, i % W) = from_f32<D>(sm.st.at(i / W, i % W));
    }
  }
  __syncthreads();
  if (A.last)
    for (int i = threadIdx.x; i < A.wxy * zw; i += blockDim.x) {
      const int r = i / zw, c = i % zw;
      A.last[A.state_at(bh, r, z0 + c)] = from_f32<D>(sm.st.at(r, c));
    }
}

template <typename D>
SweepArgs<D> sweep_args(const HeadShape& s, const double* decay, const D* x, const D* y, const D* z, int wxy,
                        int wz, D* out, const D* init, D* last, bool transposed) {
  SweepArgs<D> a{};
  a.x = x;
  a.y = y;
  a.z = z;
  a.out = out;
  a.init = init;
  a.last = last;
  a.transposed = transposed;
  a.B = static_cast<int>(s.B);
  a.T = static_cast<int>(s.T);
  a.H = static_cast<int>(s.H);
  a.wxy = wxy;
  a.wz = wz;
  a.pxy = round_up(wxy, 16);
  for (int64_t i = 0; i < s.H; ++i) a.decay[i] = decay[i];
  return a;
}

template <typename D, int SliceWidth, bool Reverse> void launch_sweep(const SweepArgs<D>& a, cudaStream_t stream) {
  auto kernel = sweep_kernel<D, SliceWidth, Reverse>;
  const size_t smem = prepare_smem<SweepSmem<D, SliceWidth>>(kernel, "lightning_attention (CUDA)", a.pxy);
  const dim3 grid(static_cast<unsigned>(a.B * a.H), static_cast<unsigned>((a.wz + SliceWidth - 1) / SliceWidth));
  kernel<<<grid, kThreads, smem, stream>>>(a);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename D, bool Reverse> void run_sweep(const SweepArgs<D>& a, cudaStream_t stream) {
  if (static_cast<int64_t>(a.B) * a.H == 0 || a.wz == 0) return;
  if (smem_fits<SweepSmem<D, slice_width<D>()>>(a.pxy))
    launch_sweep<D, slice_width<D>(), Reverse>(a, stream);
  else
    launch_sweep<D, kCompactSliceWidth, Reverse>(a, stream);
}

inline void check_dims(const HeadShape& s) {
  EAT_CHECK(s.d <= kLightningMaxHeadDim && s.e <= kLightningMaxHeadDim, "lightning_attention (CUDA): head widths d = ",
            s.d, " and e = ", s.e, " must be at most ", kLightningMaxHeadDim);
  EAT_CHECK(s.H <= kLightningMaxHeads, "lightning_attention (CUDA): ", s.H, " heads, at most ", kLightningMaxHeads,
            " are supported");
  EAT_CHECK(s.T < (int64_t{1} << 30) && s.B * s.H < (int64_t{1} << 31), "lightning_attention (CUDA): B = ", s.B,
            ", T = ", s.T, ", H = ", s.H, " exceed the kernel's index range");
}

}  // namespace eat::cuda::lightning
