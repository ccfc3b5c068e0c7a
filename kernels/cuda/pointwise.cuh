#pragma once
// Device-side helpers of the pointwise kernels: the grid-stride loop, the logistic function and
// the SiLU slope.
#include <cstdint>

namespace eat::cuda {

// for i in [0, n), each thread taking every (gridDim.x * blockDim.x)-th element.
#define EAT_GRID_STRIDE(i, n)                                                              \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// 1 / (1 + e^-x) with the accurate expf (not __expf): the comparison with the CPU is at 1e-5.
__device__ __forceinline__ float sigmoid_f32(float x) { return 1.0f / (1.0f + expf(-x)); }

// d/dx of SiLU x * s(x), given s = sigmoid_f32(x).
__device__ __forceinline__ float silu_slope_f32(float x, float s) { return s * (1.0f + x * (1.0f - s)); }

}  // namespace eat::cuda
