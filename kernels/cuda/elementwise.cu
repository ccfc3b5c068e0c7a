// Elementwise add / mul / scale and full-tensor sums.
// Pointwise kernels: one grid-stride loop, one element per thread per step.
// Sums: stage 1 gives each block one fixed contiguous chunk and reduces it with a block
// reduction into partial[block]; stage 2 (one block) reduces the partials. Chunk boundaries
// depend on n only, so the result is the same bits on every run.
#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"
#include "kernels/elementwise.h"
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scalar.cuh"

namespace eat::cuda {

namespace {

constexpr int kBlock = 256;
constexpr int64_t kSumChunk = 8192;    // elements per stage-1 block (until the cap)
constexpr int64_t kMaxPartials = 1024;  // stage 2 is one block of 1024 threads

template <typename D>
__global__ void add_kernel(const D* a, const D* b, D* y, int64_t n) {
  EAT_GRID_STRIDE(i, n) y[i] = from_f32<D>(to_f32(a[i]) + to_f32(b[i]));
}

template <typename D>
__global__ void mul_kernel(const D* a, const D* b, D* y, int64_t n) {
  EAT_GRID_STRIDE(i, n) y[i] = from_f32<D>(to_f32(a[i]) * to_f32(b[i]));
}

template <typename D>
__global__ void mul_backward_kernel(const D* a, const D* b, const D* dy, D* da, D* db, int64_t n) {
  EAT_GRID_STRIDE(i, n) {
    const float g = to_f32(dy[i]);
    if (da) da[i] = from_f32<D>(g * to_f32(b[i]));
    if (db) db[i] = from_f32<D>(g * to_f32(a[i]));
  }
}

template <typename D>
__global__ void scale_kernel(const D* x, float s, D* y, int64_t n) {
  EAT_GRID_STRIDE(i, n) y[i] = from_f32<D>(to_f32(x[i]) * s);
}

template <typename D>
__global__ void fill_scaled_kernel(const D* value, float factor, D* y, int64_t n) {
  const D v = from_f32<D>(to_f32(value[0]) * factor);
  EAT_GRID_STRIDE(i, n) y[i] = v;
}

// Block b sums x[b * chunk, min(n, (b + 1) * chunk)).
template <typename D>
__global__ void sum_partial_kernel(const D* x, int64_t n, int64_t chunk, bool square, float* partial) {
  const int64_t begin = blockIdx.x * chunk;
  const int64_t end = begin + chunk < n ? begin + chunk : n;
  float s = 0.0f;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float v = to_f32(x[i]);
    s += square ? v * v : v;
  }
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// One block: y[0] = factor * the sum of partial[0, count) in a fixed order.
template <typename Y>
__global__ void sum_finish_kernel(const float* partial, int64_t count, float factor, Y* y) {
  const float s = block_sum_of(partial, count);
  if (threadIdx.x == 0) y[0] = from_f32<Y>(s * factor);
}

int64_t sum_chunk(int64_t n) {
  const int64_t chunk = (n + kMaxPartials - 1) / kMaxPartials;
  return chunk > kSumChunk ? chunk : kSumChunk;
}

}  // namespace

int64_t sum_partials(int64_t n) {
  const int64_t chunk = sum_chunk(n);
  const int64_t p = (n + chunk - 1) / chunk;
  return p < 1 ? 1 : p;
}

template <typename T> void add_forward(const T* a, const T* b, T* y, int64_t n) {
  const cudaStream_t stream = compute_stream();
  if (n == 0) return;
  add_kernel<<<grid_for(n, kBlock), kBlock, 0, stream>>>(dev(a), dev(b), dev(y), n);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T> void mul_forward(const T* a, const T* b, T* y, int64_t n) {
  const cudaStream_t stream = compute_stream();
  if (n == 0) return;
  mul_kernel<<<grid_for(n, kBlock), kBlock, 0, stream>>>(dev(a), dev(b), dev(y), n);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void mul_backward(const T* a, const T* b, const T* dy, T* da, T* db, int64_t n) {
  const cudaStream_t stream = compute_stream();
  if (n == 0 || (!da && !db)) return;
  mul_backward_kernel<<<grid_for(n, kBlock), kBlock, 0, stream>>>(dev(a), dev(b), dev(dy), dev(da), dev(db), n);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T> void scale_forward(const T* x, double factor, T* y, int64_t n) {
  const float s = static_cast<float>(factor);
  const cudaStream_t stream = compute_stream();
  if (n == 0) return;
  scale_kernel<<<grid_for(n, kBlock), kBlock, 0, stream>>>(dev(x), s, dev(y), n);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T> void sum_finish(const float* partial, int64_t count, float factor, T* y) {
  sum_finish_kernel<<<1, 1024, 0, compute_stream()>>>(partial, count, factor, dev(y));
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T, typename Y>
void sum_forward(const T* x, int64_t n, float factor, bool square, float* partial, Y* y) {
  const cudaStream_t stream = compute_stream();
  const int64_t chunk = sum_chunk(n), count = sum_partials(n);
  if (n == 0) {
    EAT_CUDA_CHECK(cudaMemsetAsync(partial, 0, sizeof(float), stream));  // the sum of nothing is 0
  } else {
    sum_partial_kernel<<<static_cast<unsigned>(count), kBlock, 0, stream>>>(dev(x), n, chunk, square, partial);
    EAT_CUDA_CHECK_LAUNCH();
  }
  sum_finish(partial, count, factor, y);
}

template <typename T> void fill_scaled(const T* value, float factor, T* y, int64_t n) {
  const cudaStream_t stream = compute_stream();
  if (n == 0) return;
  fill_scaled_kernel<<<grid_for(n, kBlock), kBlock, 0, stream>>>(dev(value), factor, dev(y), n);
  EAT_CUDA_CHECK_LAUNCH();
}

#define EAT_INSTANTIATE(T)                                                                                  \
  template void add_forward<T>(const T*, const T*, T*, int64_t);                            \
  template void mul_forward<T>(const T*, const T*, T*, int64_t);                            \
  template void mul_backward<T>(const T*, const T*, const T*, T*, T*, int64_t);             \
  template void scale_forward<T>(const T*, double, T*, int64_t);                             \
  template void sum_finish<T>(const float*, int64_t, float, T*);                                          \
  template void sum_forward<T, T>(const T*, int64_t, float, bool, float*, T*);              \
  template void fill_scaled<T>(const T*, float, T*, int64_t);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(eat::bf16)
// The squared sums of clip_grad_norm stay f32 whatever the gradient's storage type.
template void sum_forward<eat::bf16, float>(const eat::bf16*, int64_t, float, bool, float*, float*);

}  // namespace eat::cuda
