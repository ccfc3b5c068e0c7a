#pragma once
// Helpers for the op table's f64 references: they read inputs as f64 values and build the
// expected output from loops over the definition.
#include <functional>
#include <vector>

#include "framework/tensor.h"

namespace eat::op_cases {

// f(x) elementwise, as an f64 tensor of x's shape.
inline Tensor map_values(const Tensor& x, const std::function<double(double)>& f) {
  std::vector<double> v = x.to_f64_vector();
  for (double& a : v) a = f(a);
  return Tensor::from_vector<double>(v, x.shape());
}

// f(a, b) elementwise for two tensors of one shape.
inline Tensor zip_values(const Tensor& a, const Tensor& b, const std::function<double(double, double)>& f) {
  std::vector<double> va = a.to_f64_vector(), vb = b.to_f64_vector();
  for (size_t i = 0; i < va.size(); ++i) va[i] = f(va[i], vb[i]);
  return Tensor::from_vector<double>(va, a.shape());
}

// f(row, out) for every row of the last dimension of x, in place on a copy of x's values.
inline Tensor map_rows(const Tensor& x, const std::function<void(double* row, int64_t n)>& f) {
  std::vector<double> v = x.to_f64_vector();
  const int64_t n = x.size(-1);
  for (int64_t r = 0; n > 0 && r < x.numel() / n; ++r) f(v.data() + r * n, n);
  return Tensor::from_vector<double>(v, x.shape());
}

}  // namespace eat::op_cases
