#pragma once
// The one error measure of the test suites: ||out - ref|| / ||ref|| over all elements, in f64
// (the absolute norm when ref is all zeros). A non-finite element of out, or a size mismatch, gives
// +inf, so an unwritten (NaN-poisoned) or diverged output can never pass a tolerance.
#include <cmath>
#include <limits>
#include <vector>

#include "framework/tensor.h"

namespace eat::test {

inline double rel_error(const std::vector<double>& out, const std::vector<double>& ref) {
  if (out.size() != ref.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) return std::numeric_limits<double>::infinity();
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

inline double rel_error(const Tensor& out, const Tensor& ref) {
  if (out.shape() != ref.shape()) return std::numeric_limits<double>::infinity();
  return rel_error(out.to_f64_vector(), ref.to_f64_vector());
}

}  // namespace eat::test
