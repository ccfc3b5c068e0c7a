#pragma once
// Warp and block reductions in f32 shared by the row-wise kernels. The combination order depends
// only on blockDim (never on timing), so every result is bit-reproducible for a given launch shape.
#include <cuda_runtime.h>

namespace eat::cuda {

constexpr int kWarp = 32;

struct SumOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
  static constexpr float identity = 0.0f;
};
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
  static constexpr float identity = -__builtin_huge_valf();
};

// Butterfly reduction: every lane ends with the result.
template <typename Op>
__device__ __forceinline__ float warp_reduce(float v, Op op) {
  for (int offset = kWarp / 2; offset > 0; offset >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Reduction over the whole block; every thread gets the result. blockDim.x must be a multiple
// of 32 and at most 1024. The leading __syncthreads lets a kernel call this several times in a
// row: no warp overwrites the shared slots while another still reads the previous result.
template <typename Op>
__device__ __forceinline__ float block_reduce(float v, Op op) {
  __shared__ float partial[kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  v = warp_reduce(v, op);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < warps ? partial[lane] : Op::identity;
  return warp_reduce(v, op);
}

__device__ __forceinline__ float warp_max(float x) { return warp_reduce(x, MaxOp{}); }
__device__ __forceinline__ float warp_sum(float x) { return warp_reduce(x, SumOp{}); }
__device__ __forceinline__ float block_sum(float v) { return block_reduce(v, SumOp{}); }
__device__ __forceinline__ float block_max(float v) { return block_reduce(v, MaxOp{}); }

// Sum of x[0, n) by one block: thread-strided partial sums, then the block reduction (fixed order).
__device__ __forceinline__ float block_sum_of(const float* x, long long n) {
  float s = 0.0f;
  for (long long i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
  return block_sum(s);
}

// Threads per block for a row-wise kernel over rows of `cols` elements: enough warps to cover the
// row once, capped at 1024.
inline int row_block(long long cols) {
  long long t = (cols + kWarp - 1) / kWarp * kWarp;
  if (t < kWarp) t = kWarp;
  return static_cast<int>(t < 1024 ? t : 1024);
}

}  // namespace eat::cuda
