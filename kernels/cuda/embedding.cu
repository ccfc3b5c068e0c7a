// Embedding lookup and its gradient.
// Forward: block i copies table row ids[i] to output row i, threads striding over the columns.
// Backward: token positions are grouped by id on the host (stable counting sort); then block
// (v, tile) owns dweight[v, tile] and each thread adds its column of dy over id v's positions in
// token order. Every output element is written once by one thread: no atomics, reproducible.
#include <algorithm>
#include <vector>

#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"
#include "kernels/embedding.h"
#include "kernels/cuda/scalar.cuh"

namespace eat::cuda {

namespace {

constexpr int kColumnTile = 256;

template <typename D>
__global__ void embedding_forward_kernel(const int64_t* ids, const D* weight, D* y, int64_t dim) {
  const D* src = weight + ids[blockIdx.x] * dim;
  D* dst = y + blockIdx.x * dim;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) dst[j] = src[j];
}

// blockIdx.x: the table row v; blockIdx.y: a tile of kColumnTile columns.
template <typename D>
__global__ void embedding_backward_kernel(const int64_t* offsets, const int64_t* order, const D* dy, D* dweight,
                                          int64_t dim) {
  const int64_t j = blockIdx.y * static_cast<int64_t>(kColumnTile) + threadIdx.x;
  if (j >= dim) return;
  const int64_t v = blockIdx.x;
  float s = 0.0f;
  for (int64_t k = offsets[v]; k < offsets[v + 1]; ++k) s += to_f32(dy[order[k] * dim + j]);
  dweight[v * dim + j] = from_f32<D>(s);
}

}  // namespace

template <typename T>
void embedding_forward(const int64_t* ids, const T* weight, T* y, int64_t n, int64_t dim) {
  const cudaStream_t stream = compute_stream();
  if (n == 0 || dim == 0) return;
  const int block = dim >= 256 ? 256 : static_cast<int>((dim + 31) / 32 * 32);
  embedding_forward_kernel<<<static_cast<unsigned>(n), block, 0, stream>>>(ids, dev(weight), dev(y), dim);
  EAT_CUDA_CHECK_LAUNCH();
}

void group_by_id(const int64_t* ids, int64_t n, int64_t vocab, int64_t* offsets, int64_t* order) {
  std::fill(offsets, offsets + vocab + 1, int64_t{0});
  for (int64_t i = 0; i < n; ++i) ++offsets[ids[i] + 1];
  for (int64_t v = 0; v < vocab; ++v) offsets[v + 1] += offsets[v];
  std::vector<int64_t> next(offsets, offsets + vocab);
  for (int64_t i = 0; i < n; ++i) order[next[static_cast<size_t>(ids[i])]++] = i;  // ascending i: stable
}

template <typename T>
void embedding_backward(const int64_t* offsets, const int64_t* order, const T* dy, T* dweight, int64_t vocab, int64_t dim) {
  const cudaStream_t stream = compute_stream();
  if (vocab == 0 || dim == 0) return;
  const dim3 grid(static_cast<unsigned>(vocab), static_cast<unsigned>((dim + kColumnTile - 1) / kColumnTile));
  embedding_backward_kernel<<<grid, kColumnTile, 0, stream>>>(offsets, order, dev(dy), dev(dweight), dim);
  EAT_CUDA_CHECK_LAUNCH();
}

#define EAT_INSTANTIATE(T)                                                                  \
  template void embedding_forward<T>(const int64_t*, const T*, T*, int64_t, int64_t); \
  template void embedding_backward<T>(const int64_t*, const int64_t*, const T*, T*, int64_t, int64_t);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(eat::bf16)

}  // namespace eat::cuda
