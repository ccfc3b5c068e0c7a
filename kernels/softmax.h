#pragma once
// Softmax over the last dimension of [rows, cols]. Row statistics (max, sum, dot) in double on the
// CPU, f32 on the device.
#include <cstdint>

#include "kernels/backends.h"

namespace eat {

EAT_DECLARE_KERNELS(
template <typename T> void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols);
// dx = y * (dy - sum(dy * y)) per row.
template <typename T> void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols);
)

}  // namespace eat
