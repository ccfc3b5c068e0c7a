#pragma once
// Storage types seen by device code. Host code passes eat::bf16 (raw bits); kernels read it as
// __nv_bfloat16 (same 2 bytes) and do their arithmetic in f32.
#include <cuda_bf16.h>

#include "base/dtype.h"

namespace eat::cuda {

template <typename T> struct device_scalar { using type = T; };
template <> struct device_scalar<eat::bf16> { using type = __nv_bfloat16; };
template <typename T> using device_t = typename device_scalar<T>::type;

// Reinterprets a host-side element pointer as the device type.
template <typename T> device_t<T>* dev(T* p) { return reinterpret_cast<device_t<T>*>(p); }
template <typename T> const device_t<T>* dev(const T* p) { return reinterpret_cast<const device_t<T>*>(p); }

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename D> __device__ __forceinline__ D from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

// Grid size for a grid-stride loop over n elements.
inline unsigned grid_for(long long n, int block = 256, int max_blocks = 65535) {
  long long g = (n + block - 1) / block;
  if (g < 1) g = 1;
  return static_cast<unsigned>(g < max_blocks ? g : max_blocks);
}

}  // namespace eat::cuda
