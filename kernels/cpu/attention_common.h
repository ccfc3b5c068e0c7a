#pragma once
// Pieces shared by the naive and tiled attention kernels: the mask and strided per-head views.
#include <Eigen/Dense>

#include "kernels/cpu/attention.h"

namespace eat::cpu::attention_detail {

template <typename T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using ConstView = Eigen::Map<const Mat<T>, 0, Eigen::OuterStride<>>;
template <typename T>
using View = Eigen::Map<Mat<T>, 0, Eigen::OuterStride<>>;

// Does query t see key s?
inline bool allowed(const AttentionShape& s, int64_t t, int64_t key) {
  if (!s.causal) return true;
  return key <= t && (s.window_left < 0 || key >= t - s.window_left);
}

// Rows [t0, t0 + rows) of head h in batch b of a [B, T, H, width] tensor.
template <typename T>
ConstView<T> head_rows(const T* base, const AttentionShape& s, int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t width) {
  return ConstView<T>(base + ((b * s.T + t0) * s.H + h) * width, rows, width, Eigen::OuterStride<>(s.H * width));
}
template <typename T>
View<T> head_rows(T* base, const AttentionShape& s, int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t width) {
  return View<T>(base + ((b * s.T + t0) * s.H + h) * width, rows, width, Eigen::OuterStride<>(s.H * width));
}

}  // namespace eat::cpu::attention_detail
