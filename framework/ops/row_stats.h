#pragma once
// Per-row statistics an op saves for its backward (norms, log-sum-exp): f64 on the CPU, whose
// kernels keep row statistics in double; f32 on the device, whose reductions run in f32.
#include "framework/tensor.h"

namespace eat {

inline Tensor row_stats(int64_t rows, const Tensor& like) {
  return like.device() == Device::cpu ? Tensor::empty({rows}, DType::f64) : Tensor::empty({rows}, DType::f32, like.device());
}

// A row-statistics tensor's data as the RowStat pointer of whichever backend's kernel receives it
// (kernels/backends.h), so one EAT_KERNEL call passes it to both.
class RowStatData {
 public:
  explicit RowStatData(const Tensor& stats) : stats_(stats) {}
  operator double*() const { return stats_.data<double>(); }
  operator float*() const { return stats_.data<float>(); }

 private:
  const Tensor& stats_;
};

inline RowStatData row_stat_data(const Tensor& stats) { return RowStatData(stats); }

}  // namespace eat
