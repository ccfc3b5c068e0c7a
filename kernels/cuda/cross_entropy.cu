// Cross-entropy with a fused log-softmax; the probabilities are never stored.
// Forward: one block per row finds the row max and sum of exp(x - max) with block reductions,
// giving lse and the row's loss lse - x[target]; a single block then sums the row losses in a
// fixed order (deterministic) and scales by 1 / count.
// Backward: one block per row writes exp(x - lse) * scale, minus scale at the target column.
#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/scalar.cuh"

namespace eat::cuda {

namespace {

template <typename D>
__global__ void cross_entropy_rows_kernel(const D* logits, const int64_t* targets, float* lse, float* row_loss, int64_t V,
                                          int64_t ignore_index) {
  const D* r = logits + blockIdx.x * V;
  float m = MaxOp::identity;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) m = fmaxf(m, to_f32(r[j]));
  m = block_max(m);
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) s += expf(to_f32(r[j]) - m);
  s = block_sum(s);
  if (threadIdx.x == 0) {
    const float l = m + logf(s);
    const int64_t target = targets[blockIdx.x];
    lse[blockIdx.x] = l;
    row_loss[blockIdx.x] = target == ignore_index ? 0.0f : l - to_f32(r[target]);
  }
}

template <typename D>
__global__ void cross_entropy_backward_kernel(const D* logits, const int64_t* targets, const float* lse, const D* dloss,
                                              float inv_count, D* dlogits, int64_t V, int64_t ignore_index) {
  const int64_t base = blockIdx.x * V, target = targets[blockIdx.x];
  if (target == ignore_index) {
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) dlogits[base + j] = from_f32<D>(0.0f);
    return;
  }
  const float scale = to_f32(dloss[0]) * inv_count, l = lse[blockIdx.x];
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
    const float p = expf(to_f32(logits[base + j]) - l) * scale;
    dlogits[base + j] = from_f32<D>(j == target ? p - scale : p);
  }
}

}  // namespace

template <typename T>
void cross_entropy_forward(const T* logits, const int64_t* targets, float* lse, float* row_loss, int64_t N, int64_t V,
                           int64_t ignore_index, float inv_count, T* loss) {
  const cudaStream_t stream = compute_stream();
  if (N > 0) {
    cross_entropy_rows_kernel<<<static_cast<unsigned>(N), row_block(V), 0, stream>>>(dev(logits), targets, lse, row_loss, V,
                                                                                      ignore_index);
    EAT_CUDA_CHECK_LAUNCH();
  }
  sum_finish(row_loss, N, inv_count, loss);
}

template <typename T>
void cross_entropy_backward(const T* logits, const int64_t* targets, const float* lse, const T* dloss, float inv_count,
                            T* dlogits, int64_t N, int64_t V, int64_t ignore_index) {
  const cudaStream_t stream = compute_stream();
  if (N == 0) return;
  cross_entropy_backward_kernel<<<static_cast<unsigned>(N), row_block(V), 0, stream>>>(
      dev(logits), targets, lse, dev(dloss), inv_count, dev(dlogits), V, ignore_index);
  EAT_CUDA_CHECK_LAUNCH();
}

#define EAT_INSTANTIATE(T)                                                                                            \
  template void cross_entropy_forward<T>(const T*, const int64_t*, float*, float*, int64_t, int64_t, int64_t, float, \
                                         T*);                                                           \
  template void cross_entropy_backward<T>(const T*, const int64_t*, const float*, const T*, float, T*, int64_t,      \
                                          int64_t, int64_t);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(eat::bf16)

}  // namespace eat::cuda
