#pragma once
// Plain loops the model tests write their layers' references with: rows are tokens, one sequence
// at a time, f64.
#include <cmath>
#include <vector>

#include "framework/tensor.h"

namespace eat::test {

// y[t][o] = sum_i x[t][i] W[o][i] (+ b[o]) for x [rows, in] and W [out, in].
inline std::vector<double> project(const std::vector<double>& x, const Tensor& weight, const std::vector<double>& bias = {}) {
  const int64_t out = weight.size(0), in = weight.size(1), rows = static_cast<int64_t>(x.size()) / in;
  const std::vector<double> w = weight.to_f64_vector();
  std::vector<double> y(static_cast<size_t>(rows * out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = bias.empty() ? 0.0 : bias[o];
      for (int64_t i = 0; i < in; ++i) s += x[r * in + i] * w[o * in + i];
      y[r * out + o] = s;
    }
  return y;
}

inline double sigmoid_of(double a) { return 1.0 / (1.0 + std::exp(-a)); }

// Rotate-half RoPE of one head row at position `pos`.
inline void rotate(double* row, int64_t d, int64_t pos, double theta) {
  for (int64_t i = 0; i < d / 2; ++i) {
    const double a = static_cast<double>(pos) * std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(d));
    const double x1 = row[i], x2 = row[i + d / 2];
    row[i] = x1 * std::cos(a) - x2 * std::sin(a);
    row[i + d / 2] = x2 * std::cos(a) + x1 * std::sin(a);
  }
}

}  // namespace eat::test
