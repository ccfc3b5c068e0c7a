// Repeating the last axis and summing the copies back: one thread per output (forward) or input
// (backward) element in a grid-stride loop; the backward sums the copies in order, in f32.
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"
#include "kernels/tile.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

template <typename D>
__global__ void tile_last_forward_kernel(const D* x, D* y, int64_t n, int64_t times, int64_t total) {
  EAT_GRID_STRIDE(k, total) {
    const int64_t j = k % n, i = k / (n * times);
    y[k] = x[i * n + j];
  }
}

template <typename D>
__global__ void tile_last_backward_kernel(const D* dy, D* dx, int64_t n, int64_t times, int64_t total) {
  EAT_GRID_STRIDE(k, total) {
    const int64_t j = k % n, i = k / n;
    float s = 0.0f;
    for (int64_t r = 0; r < times; ++r) s += to_f32(dy[(i * times + r) * n + j]);
    dx[k] = from_f32<D>(s);
  }
}

}  // namespace

template <typename T>
void tile_last_forward(const T* x, T* y, int64_t rows, int64_t n, int64_t times) {
  const int64_t total = rows * n * times;
  if (total == 0) return;
  tile_last_forward_kernel<<<grid_for(total), 256, 0, compute_stream()>>>(dev(x), dev(y), n, times, total);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void tile_last_backward(const T* dy, T* dx, int64_t rows, int64_t n, int64_t times) {
  const int64_t total = rows * n;
  if (total == 0) return;
  tile_last_backward_kernel<<<grid_for(total), 256, 0, compute_stream()>>>(dev(dy), dev(dx), n, times, total);
  EAT_CUDA_CHECK_LAUNCH();
}

#define EAT_INSTANTIATE(T)                                                          \
  template void tile_last_forward<T>(const T*, T*, int64_t, int64_t, int64_t); \
  template void tile_last_backward<T>(const T*, T*, int64_t, int64_t, int64_t);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(eat::bf16)

}  // namespace eat::cuda
