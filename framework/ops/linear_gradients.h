#pragma once
// What linear (framework/ops/linear.cpp) and a joined projection's linear_split
// (framework/ops/joins.cpp) share: the checks of input, weight and bias, and the gradients of all
// three from the output's.
#include <vector>

#include "framework/tensor.h"

namespace eat {

struct LinearShape {
  int64_t rows, in, out;  // x is [rows, in] once flattened, y [rows, out]
};

// Checks x [..., in], weight [out, in] and bias [out] (if defined) of op `op`; the shape.
LinearShape check_linear(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias);

// Checks a residual the output is written onto (undefined: none): x's dtype and device, the
// output's shape.
void check_residual(const char* op, const Tensor& x, const Tensor& residual, const Shape& out_shape);

// dx = dy w, dw = dy^T x and db = the column sums of dy, each only where asked (undefined if not).
std::vector<Tensor> linear_gradients(const Tensor& dy, const Tensor& x, const Tensor& w, const LinearShape& s,
                                     bool need_x, bool need_w, bool need_b);

}  // namespace eat
