#pragma once
// Per-row statistics an op saves for its backward (norms, log-sum-exp): f64 on the CPU, whose
// kernels keep row statistics in double; f32 on the device, whose reductions run in f32.
#include "framework/tensor.h"

namespace eat {

inline Tensor row_stats(int64_t rows, const Tensor& like) {
  return like.device() == Device::cpu ? Tensor::empty({rows}, DType::f64) : Tensor::empty({rows}, DType::f32, like.device());
}

}  // namespace eat
