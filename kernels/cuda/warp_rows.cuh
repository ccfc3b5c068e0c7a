#pragma once
// The row arithmetic of the simple warp-per-row attention kernels (summary_attention,
// gated_attention): rows are staged in shared memory in f32, and a warp owning a row of up to
// kMaxWidth columns holds its lane's columns c = lane + 32 i in registers. Every sum runs in a
// fixed order, in f32.
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scalar.cuh"

namespace eat::cuda::warp_rows {

inline constexpr int kMaxWidth = 128;
inline constexpr int kCols = kMaxWidth / kWarp;  // columns a lane owns in a row of up to 128

// Rows [r0, r0 + n) of head (b, h) of a [B, N, H, width] tensor into smem (row stride `stride`),
// as f32; rows past `valid` are zero.
template <typename D>
__device__ void load_rows(float* dst, int stride, const D* src, int b, int N, int H, int h, int width, int r0, int n,
                          int valid) {
  for (int i = threadIdx.x; i < n * width; i += blockDim.x) {
    const int r = i / width, c = i % width;
    dst[r * stride + c] =
        r < valid ? to_f32(src[((static_cast<long long>(b) * N + r0 + r) * H + h) * width + c]) : 0.f;
  }
}

__device__ __forceinline__ float dot(const float* a, const float* b, int n) {
  float s = 0.f;
  for (int c = 0; c < n; ++c) s = fmaf(a[c], b[c], s);
  return s;
}

// The row dot of a smem row with a lane-strided row of registers, reduced over the warp.
__device__ __forceinline__ float warp_dot(const float* row, int w, int lane, const float (&r)[kCols]) {
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < kCols; ++i)
    if (lane + kWarp * i < w) s = fmaf(row[lane + kWarp * i], r[i], s);
  return warp_sum(s);
}

// Lane `lane`'s columns (c = lane + 32 i) of a global row of `width` elements, in f32; 0 past it.
template <typename D>
__device__ __forceinline__ void row_to_regs(const D* row, int width, int lane, float (&r)[kCols]) {
#pragma unroll
  for (int i = 0; i < kCols; ++i) r[i] = lane + kWarp * i < width ? to_f32(row[lane + kWarp * i]) : 0.f;
}

// acc (lane-strided columns of a width-w row) += sum_j w_j rows[j] over j < n, w_j held by lane j.
__device__ __forceinline__ void add_weighted_rows(float (&acc)[kCols], float w, int n, const float* rows, int stride,
                                                  int width, int lane) {
  for (int j = 0; j < n; ++j) {
    const float wj = __shfl_sync(0xffffffffu, w, j);
#pragma unroll
    for (int i = 0; i < kCols; ++i)
      if (lane + kWarp * i < width) acc[i] = fmaf(wj, rows[j * stride + lane + kWarp * i], acc[i]);
  }
}

// Lane `lane`'s columns (c = lane + 32 i) of a global row of `width` elements: factor * r.
template <typename D>
__device__ __forceinline__ void store_row(D* row, const float (&r)[kCols], float factor, int width, int lane) {
#pragma unroll
  for (int i = 0; i < kCols; ++i)
    if (lane + kWarp * i < width) row[lane + kWarp * i] = from_f32<D>(factor * r[i]);
}

// The key side of an attention backward: one key row (k, v, in smem) against a tile of n query
// rows, lane l taking row l (smem rows q_rows [n, d + 1] and x_rows = dO [n, e + 1], with their
// log-sum-exps lse and D = dO . O in rowdot). With p = exp(scale q_l . k - lse_l) and
// ds = p (x_l . v - D_l) where lane l's query attends the key (else 0), adds sum_l ds q_l to dk
// and sum_l p x_l to dv.
__device__ __forceinline__ void add_key_row_grads(bool attends, const float* k, const float* v, const float* q_rows,
                                                  const float* x_rows, const float* lse, const float* rowdot, int d,
                                                  int e, float scale, int n, int lane, float (&dk)[kCols],
                                                  float (&dv)[kCols]) {
  const int dp = d + 1, ep = e + 1;
  float p = 0.f, ds = 0.f;
  if (attends) {
    p = expf(scale * dot(q_rows + lane * dp, k, d) - lse[lane]);
    ds = p * (dot(x_rows + lane * ep, v, e) - rowdot[lane]);
  }
  add_weighted_rows(dk, ds, n, q_rows, dp, d, lane);
  add_weighted_rows(dv, p, n, x_rows, ep, e, lane);
}

}  // namespace eat::cuda::warp_rows
