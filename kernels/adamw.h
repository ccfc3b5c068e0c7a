#pragma once
// One AdamW step (decoupled weight decay, Loshchilov & Hutter; the torch.optim.AdamW update):
//   p <- p - lr * wd * p
//   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
//   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// The CPU keeps the moments in the parameter's type; the device keeps them in f32 whatever the
// parameter's storage type, computes the update in f32 and may update an f32 master copy.
#include <cstdint>
#include <vector>

namespace eat {

struct AdamWStep {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t t;  // 1-based step count of this parameter
};

namespace cpu {
// Each gradient is taken times grad_scale (gradient clipping folded into the update: one pass
// over the gradients fewer than scaling them first; a scale of 1 changes no bit).
template <typename T>
void adamw_update(T* param, const T* grad, T* m, T* v, int64_t n, const AdamWStep& s, double grad_scale = 1.0);

// One parameter of a whole-model update.
template <typename T>
struct AdamWTensor {
  T* param;
  const T* grad;
  T* m;
  T* v;
  int64_t n;
  AdamWStep step;
};
// adamw_update on every tensor, the same bits, in one parallel region: a region per parameter
// costs a wake-up and a barrier each, a few dozen a step, and far more when the threads share
// their cores with another process.
template <typename T>
void adamw_update_all(const std::vector<AdamWTensor<T>>& tensors, double grad_scale = 1.0);

// sum of squares in double over fixed-size blocks summed in order (thread-count independent).
template <typename T>
double sum_of_squares(const T* x, int64_t n);
// sums[i] = sum_of_squares(xs[i], ns[i]) for every i, the same bits, in one parallel region.
template <typename T>
void sums_of_squares(const std::vector<const T*>& xs, const std::vector<int64_t>& ns, double* sums);
}  // namespace cpu

namespace cuda {
// param and grad are T (f32 or bf16). With master == null the parameter's own value is updated
// (read as f32, written back). With an f32 master copy, the master is updated and param receives
// its rounding (the bf16 copy a bf16 model computes with).
template <typename T>
void adamw_update(T* param, const T* grad, float* m, float* v, float* master, int64_t n, const AdamWStep& s);
}  // namespace cuda

}  // namespace eat
