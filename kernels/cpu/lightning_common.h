#pragma once
// Shared by the three decayed causal linear attention kernels (naive, recurrent, chunked): strided
// per-head views of [B, T, H, width] tensors (shape: HeadShape), the [B, H, d, e] state views and
// the table of decay powers.
//
// State convention, the same in every kernel: S_t = lambda S_{t-1} + k_t^T v_t, o_t = q_t S_t,
// S_{-1} = S0 (the initial state, zero when absent), final state = S_{T-1}.
#include <Eigen/Dense>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/head_shape.h"

namespace eat::cpu {

namespace lightning_detail {

template <typename T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using ConstView = Eigen::Map<const Mat<T>, 0, Eigen::OuterStride<>>;
template <typename T>
using View = Eigen::Map<Mat<T>, 0, Eigen::OuterStride<>>;
template <typename T>
using ConstState = Eigen::Map<const Mat<T>>;
template <typename T>
using State = Eigen::Map<Mat<T>>;

// Rows [t0, t0 + rows) of head h in batch b of a [B, T, H, width] tensor.
template <typename T>
ConstView<T> head_rows(const T* base, const HeadShape& s, int64_t b, int64_t h, int64_t t0, int64_t rows,
                       int64_t width) {
  return ConstView<T>(base + ((b * s.T + t0) * s.H + h) * width, rows, width, Eigen::OuterStride<>(s.H * width));
}
template <typename T>
View<T> head_rows(T* base, const HeadShape& s, int64_t b, int64_t h, int64_t t0, int64_t rows, int64_t width) {
  return View<T>(base + ((b * s.T + t0) * s.H + h) * width, rows, width, Eigen::OuterStride<>(s.H * width));
}

// The d x e state of flat (batch, head) index bh in a [B, H, d, e] tensor.
template <typename T>
ConstState<T> state_of(const T* base, const HeadShape& s, int64_t bh) {
  return ConstState<T>(base + bh * s.d * s.e, s.d, s.e);
}
template <typename T>
State<T> state_of(T* base, const HeadShape& s, int64_t bh) {
  return State<T>(base + bh * s.d * s.e, s.d, s.e);
}

// lambda^0 .. lambda^n. Each power comes from pow() in double rather than from repeated
// multiplication, so the error does not grow with the exponent; only non-negative exponents
// exist, so with lambda <= 1 nothing can overflow (deep powers underflow to 0, harmlessly).
template <typename T>
std::vector<T> decay_powers(double lambda, int64_t n) {
  std::vector<T> p(static_cast<size_t>(n + 1));
  for (int64_t i = 0; i <= n; ++i) p[static_cast<size_t>(i)] = static_cast<T>(std::pow(lambda, static_cast<double>(i)));
  return p;
}

// The powers lambda_h^0 .. lambda_h^n of every head h, [H, n + 1], built once per call of a
// kernel (they depend on the head only, not on the batch).
template <typename T>
std::vector<T> decay_power_table(const double* decay, int64_t H, int64_t n) {
  std::vector<T> table;
  table.reserve(static_cast<size_t>(H * (n + 1)));
  for (int64_t h = 0; h < H; ++h) {
    std::vector<T> p = decay_powers<T>(decay[h], n);
    table.insert(table.end(), p.begin(), p.end());
  }
  return table;
}

// m.row(r) *= f[r].
template <typename T, typename M>
void scale_rows(M&& m, const T* f) {
  for (Eigen::Index r = 0; r < m.rows(); ++r) m.row(r) *= f[r];
}

// m.row(r) *= lambda^(rows - 1 - r), from p = lambda^0, lambda^1, ..: how much of row r's token
// survives to the end of the rows.
template <typename T, typename M>
void scale_rows_to_end(M&& m, const T* p) {
  const Eigen::Index rows = m.rows();
  for (Eigen::Index r = 0; r < rows; ++r) m.row(r) *= p[rows - 1 - r];
}

// The decay mask on the lower triangle of a square tile: m(r, c) *= lambda^(r - c) for c <= r.
// Entries above the diagonal are left alone: every product reads the tile through
// triangularView<Lower>(), which never touches them.
template <typename T>
void apply_decay_mask(Mat<T>& m, const T* powers) {
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c <= r; ++c) m(r, c) *= powers[r - c];
}

}  // namespace lightning_detail
}  // namespace eat::cpu
