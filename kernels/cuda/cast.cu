#include <cstdint>
#include <type_traits>

#include "kernels/cuda/cast.h"
#include "runtime/cuda/check.h"
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

template <typename T> struct Tag { using type = T; };

// Calls f(Tag<device type of t>{}).
template <typename F>
void with_device_type(DType t, F&& f) {
  switch (t) {
    case DType::f32: f(Tag<float>{}); return;
    case DType::f64: f(Tag<double>{}); return;
    case DType::bf16: f(Tag<__nv_bfloat16>{}); return;
    case DType::i32: f(Tag<int32_t>{}); return;
    case DType::i64: f(Tag<int64_t>{}); return;
  }
  fail("cast: unknown dtype ", static_cast<int>(t));
}

template <typename S> __device__ __forceinline__ double load_f64(S x) { return static_cast<double>(x); }
template <> __device__ __forceinline__ double load_f64(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename D> __device__ __forceinline__ D store_f64(double v) { return static_cast<D>(v); }
template <> __device__ __forceinline__ float store_f64<float>(double v) { return __double2float_rn(v); }
// f64 -> f32 -> bf16, the two roundings the CPU conversion does.
template <> __device__ __forceinline__ __nv_bfloat16 store_f64<__nv_bfloat16>(double v) {
  return __float2bfloat16_rn(__double2float_rn(v));
}

template <typename T>
constexpr bool is_f32_or_bf16 = std::is_same_v<T, float> || std::is_same_v<T, __nv_bfloat16>;

template <typename S, typename D>
__global__ void cast_kernel(const S* __restrict__ src, D* __restrict__ dst, long long n) {
  EAT_GRID_STRIDE(i, n) {
    if constexpr (is_f32_or_bf16<S> && is_f32_or_bf16<D>)
      dst[i] = from_f32<D>(to_f32(src[i]));  // the hot mixed-precision pair stays in f32
    else
      dst[i] = store_f64<D>(load_f64(src[i]));
  }
}

}  // namespace

void cast(const void* src, DType from, void* dst, DType to, int64_t n) {
  if (n <= 0) return;
  with_device_type(from, [&](auto s) {
    using S = typename decltype(s)::type;
    with_device_type(to, [&](auto d) {
      using D = typename decltype(d)::type;
      cast_kernel<S, D><<<grid_for(n), 256, 0, compute_stream()>>>(static_cast<const S*>(src), static_cast<D*>(dst), n);
      EAT_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace eat::cuda
