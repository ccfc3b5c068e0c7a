// act(a) * b and its gradients, act = SiLU or identity: one thread per element in a grid-stride
// loop; the backward recomputes the sigmoid instead of saving it.
#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"
#include "kernels/glu_gate.h"
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"

namespace eat::cuda {

namespace {

template <typename D>
__global__ void glu_gate_forward_kernel(bool silu, const D* a, const D* b, D* y, int64_t n) {
  EAT_GRID_STRIDE(i, n) {
    const float x = to_f32(a[i]);
    y[i] = from_f32<D>((silu ? x * sigmoid_f32(x) : x) * to_f32(b[i]));
  }
}

template <typename D>
__global__ void glu_gate_backward_kernel(bool silu, const D* a, const D* b, const D* dy, D* da, D* db, int64_t n) {
  EAT_GRID_STRIDE(i, n) {
    const float x = to_f32(a[i]), g = to_f32(dy[i]);
    float act = x, dact = 1.0f;
    if (silu) {
      const float s = sigmoid_f32(x);
      act = x * s;
      dact = silu_slope_f32(x, s);
    }
    if (da) da[i] = from_f32<D>(g * to_f32(b[i]) * dact);
    if (db) db[i] = from_f32<D>(g * act);
  }
}

}  // namespace

template <typename T> void glu_gate_forward(bool silu, const T* a, const T* b, T* y, int64_t n) {
  const cudaStream_t stream = compute_stream();
  if (n == 0) return;
  glu_gate_forward_kernel<<<grid_for(n), 256, 0, stream>>>(silu, dev(a), dev(b), dev(y), n);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void glu_gate_backward(bool silu, const T* a, const T* b, const T* dy, T* da, T* db, int64_t n) {
  const cudaStream_t stream = compute_stream();
  if (n == 0 || (!da && !db)) return;
  glu_gate_backward_kernel<<<grid_for(n), 256, 0, stream>>>(silu, dev(a), dev(b), dev(dy), dev(da), dev(db), n);
  EAT_CUDA_CHECK_LAUNCH();
}

#define EAT_INSTANTIATE(T)                                                                  \
  template void glu_gate_forward<T>(bool, const T*, const T*, T*, int64_t); \
  template void glu_gate_backward<T>(bool, const T*, const T*, const T*, T*, T*, int64_t);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(eat::bf16)

}  // namespace eat::cuda
