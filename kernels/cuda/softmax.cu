// Row-wise softmax, numerically stable: one block per row. The block finds the row maximum, then
// the sum of exp(x - max), both with block reductions, then writes exp(x - max) / sum; threads
// stride over the row so any width works with at most 1024 threads. The backward is the same
// shape: one block reduction for <dy, y>, then dx = y * (dy - <dy, y>).
#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scalar.cuh"
#include "kernels/softmax.h"

namespace eat::cuda {

namespace {

template <typename D>
__global__ void softmax_forward_kernel(const D* x, D* y, int64_t cols) {
  const D* xr = x + blockIdx.x * cols;
  D* yr = y + blockIdx.x * cols;
  float m = MaxOp::identity;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, to_f32(xr[j]));
  m = block_max(m);
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += expf(to_f32(xr[j]) - m);
  const float inv = 1.0f / block_sum(s);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = from_f32<D>(expf(to_f32(xr[j]) - m) * inv);
}

template <typename D>
__global__ void softmax_backward_kernel(const D* y, const D* dy, D* dx, int64_t cols) {
  const int64_t base = blockIdx.x * cols;
  float dot = 0.0f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) dot += to_f32(y[base + j]) * to_f32(dy[base + j]);
  dot = block_sum(dot);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
    dx[base + j] = from_f32<D>(to_f32(y[base + j]) * (to_f32(dy[base + j]) - dot));
}

}  // namespace

template <typename T> void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols) {
  const cudaStream_t stream = compute_stream();
  if (rows == 0 || cols == 0) return;
  softmax_forward_kernel<<<static_cast<unsigned>(rows), row_block(cols), 0, stream>>>(dev(x), dev(y), cols);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols) {
  const cudaStream_t stream = compute_stream();
  if (rows == 0 || cols == 0) return;
  softmax_backward_kernel<<<static_cast<unsigned>(rows), row_block(cols), 0, stream>>>(dev(y), dev(dy), dev(dx), cols);
  EAT_CUDA_CHECK_LAUNCH();
}

#define EAT_INSTANTIATE(T)                                                             \
  template void softmax_forward<T>(const T*, T*, int64_t, int64_t); \
  template void softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(eat::bf16)

}  // namespace eat::cuda
