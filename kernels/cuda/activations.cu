// SiLU, GELU (erf and tanh forms) and sigmoid with their derivatives: one thread per element in a
// grid-stride loop, the activation chosen by a switch that is uniform across the grid.
#include "kernels/activations.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"

namespace eat::cuda {

namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;
constexpr float kGeluCubic = 0.044715f;

__device__ __forceinline__ float value(Activation act, float x) {
  switch (act) {
    case Activation::silu: return x * sigmoid_f32(x);
    case Activation::gelu_erf: return 0.5f * x * (1.0f + erff(x * kInvSqrt2));
    case Activation::gelu_tanh: return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + kGeluCubic * x * x * x)));
    case Activation::sigmoid: return sigmoid_f32(x);
  }
  return x;
}

__device__ __forceinline__ float derivative(Activation act, float x) {
  switch (act) {
    case Activation::silu:
      return silu_slope_f32(x, sigmoid_f32(x));
    case Activation::gelu_erf:
      return 0.5f * (1.0f + erff(x * kInvSqrt2)) + x * kInvSqrt2Pi * expf(-0.5f * x * x);
    case Activation::gelu_tanh: {
      const float t = tanhf(kSqrt2OverPi * (x + kGeluCubic * x * x * x));
      return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
    }
    case Activation::sigmoid: {
      const float s = sigmoid_f32(x);
      return s * (1.0f - s);
    }
  }
  return 1.0f;
}

template <typename D>
__global__ void activation_forward_kernel(Activation act, const D* x, D* y, int64_t n) {
  EAT_GRID_STRIDE(i, n) y[i] = from_f32<D>(value(act, to_f32(x[i])));
}

template <typename D>
__global__ void activation_backward_kernel(Activation act, const D* x, const D* dy, D* dx, int64_t n) {
  EAT_GRID_STRIDE(i, n) dx[i] = from_f32<D>(to_f32(dy[i]) * derivative(act, to_f32(x[i])));
}

}  // namespace

template <typename T> void activation_forward(Activation act, const T* x, T* y, int64_t n) {
  const cudaStream_t stream = compute_stream();
  if (n == 0) return;
  activation_forward_kernel<<<grid_for(n), 256, 0, stream>>>(act, dev(x), dev(y), n);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void activation_backward(Activation act, const T* x, const T* dy, T* dx, int64_t n) {
  const cudaStream_t stream = compute_stream();
  if (n == 0) return;
  activation_backward_kernel<<<grid_for(n), 256, 0, stream>>>(act, dev(x), dev(dy), dev(dx), n);
  EAT_CUDA_CHECK_LAUNCH();
}

#define EAT_INSTANTIATE(T)                                                                    \
  template void activation_forward<T>(Activation, const T*, T*, int64_t); \
  template void activation_backward<T>(Activation, const T*, const T*, T*, int64_t);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(eat::bf16)

}  // namespace eat::cuda
