// MoH's router on CUDA: one thread per token row in a grid-stride loop, f32 arithmetic on f32 or
// bf16 storage. The row's arithmetic, the lower-index tie-breaking of the top-k included, is the
// CPU kernel's (kernels/moh_gates_row.h), so both select the same heads from the same logits. A
// row is a few dozen values: the op is tiny beside the attention it gates, and a thread per row
// needs no reductions across threads.
#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"
#include "kernels/moh_gates.h"
#include "kernels/moh_gates_row.h"

namespace eat::cuda {

namespace {

template <typename D>
struct DeviceNum {
  using A = float;
  __device__ static A load(D x) { return to_f32(x); }
  __device__ static D store(A x) { return from_f32<D>(x); }
  __device__ static A exp(A x) { return expf(x); }
};

template <typename D> using Row = moh::GateRow<DeviceNum<D>, D>;

constexpr int kThreads = 128;

template <typename D>
__global__ void moh_gates_forward_kernel(MohGatesShape s, const D* shared_logits, const D* routed_logits,
                                         const D* mix_logits, D* gates, D* routed_probs, D* selected) {
  EAT_GRID_STRIDE(n, s.N) Row<D>(s, n, routed_logits, mix_logits).forward(shared_logits, gates, routed_probs, selected);
}

template <typename D>
__global__ void moh_gates_backward_kernel(MohGatesShape s, const D* shared_logits, const D* routed_logits,
                                          const D* mix_logits, const D* dgates, const D* drouted_probs,
                                          D* dshared_logits, D* drouted_logits, D* dmix_logits) {
  EAT_GRID_STRIDE(n, s.N)
  Row<D>(s, n, routed_logits, mix_logits)
      .backward(shared_logits, dgates, drouted_probs, dshared_logits, drouted_logits, dmix_logits);
}

}  // namespace

template <typename T>
void moh_gates_forward(const MohGatesShape& s, const T* shared_logits, const T* routed_logits, const T* mix_logits,
                       T* gates, T* routed_probs, T* selected) {
  const cudaStream_t stream = compute_stream();
  if (s.N == 0) return;
  moh_gates_forward_kernel<<<grid_for(s.N, kThreads), kThreads, 0, stream>>>(
      s, dev(shared_logits), dev(routed_logits), dev(mix_logits), dev(gates), dev(routed_probs), dev(selected));
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void moh_gates_backward(const MohGatesShape& s, const T* shared_logits, const T* routed_logits, const T* mix_logits,
                        const T* dgates, const T* drouted_probs, T* dshared_logits, T* drouted_logits, T* dmix_logits) {
  const cudaStream_t stream = compute_stream();
  if (s.N == 0) return;
  moh_gates_backward_kernel<<<grid_for(s.N, kThreads), kThreads, 0, stream>>>(
      s, dev(shared_logits), dev(routed_logits), dev(mix_logits), dev(dgates), dev(drouted_probs), dev(dshared_logits),
      dev(drouted_logits), dev(dmix_logits));
  EAT_CUDA_CHECK_LAUNCH();
}

#define EAT_INSTANTIATE(T)                                                                                       \
  template void moh_gates_forward<T>(const MohGatesShape&, const T*, const T*, const T*, T*, T*, T*);         \
  template void moh_gates_backward<T>(const MohGatesShape&, const T*, const T*, const T*, const T*, const T*, T*, \
                                      T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(eat::bf16)

}  // namespace eat::cuda
