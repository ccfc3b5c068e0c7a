#pragma once
// One AdamW step (decoupled weight decay, Loshchilov & Hutter; the torch.optim.AdamW update):
//   p <- p - lr * wd * p
//   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
//   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
#include <cstdint>

namespace eat::cpu {

struct AdamWStep {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t t;  // 1-based step count of this parameter
};

template <typename T>
void adamw_update(T* param, const T* grad, T* m, T* v, int64_t n, const AdamWStep& s);

// sum of squares in double over fixed-size blocks summed in order (thread-count independent).
template <typename T>
double sum_of_squares(const T* x, int64_t n);

}  // namespace eat::cpu
