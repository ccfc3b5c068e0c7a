// AdamW update: one thread per parameter element in a grid-stride loop. The bias corrections and
// the decay factor are formed once on the host in double (as on the CPU) and passed as f32.
#include <cmath>

#include "kernels/adamw.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"

namespace eat::cuda {

namespace {

struct Coefficients {
  float beta1, beta2, decay, step, inv_bc2_sqrt, eps;
};

template <typename D>
__global__ void adamw_kernel(D* param, const D* grad, float* m, float* v, float* master, int64_t n, Coefficients c) {
  EAT_GRID_STRIDE(i, n) {
    const float g = to_f32(grad[i]);
    const float mi = c.beta1 * m[i] + (1.0f - c.beta1) * g;
    const float vi = c.beta2 * v[i] + (1.0f - c.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float p = master ? master[i] : to_f32(param[i]);
    const float updated = p * c.decay - c.step * mi / (sqrtf(vi) * c.inv_bc2_sqrt + c.eps);
    if (master) master[i] = updated;
    param[i] = from_f32<D>(updated);
  }
}

}  // namespace

template <typename T>
void adamw_update(T* param, const T* grad, float* m, float* v, float* master, int64_t n, const AdamWStep& s) {
  const cudaStream_t stream = compute_stream();
  if (n == 0) return;
  const double t = static_cast<double>(s.t);
  const float lr = static_cast<float>(s.lr), bc1 = static_cast<float>(1.0 - std::pow(s.beta1, t));
  const Coefficients c{static_cast<float>(s.beta1),
                       static_cast<float>(s.beta2),
                       static_cast<float>(1.0 - s.lr * s.weight_decay),
                       lr / bc1,
                       static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(s.beta2, t))),
                       static_cast<float>(s.eps)};
  adamw_kernel<<<grid_for(n), 256, 0, stream>>>(dev(param), dev(grad), m, v, master, n, c);
  EAT_CUDA_CHECK_LAUNCH();
}

template void adamw_update<float>(float*, const float*, float*, float*, float*, int64_t, const AdamWStep&);
template void adamw_update<eat::bf16>(eat::bf16*, const eat::bf16*, float*, float*, float*, int64_t, const AdamWStep&);

}  // namespace eat::cuda
