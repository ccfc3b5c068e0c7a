#pragma once
// Softmax over the last dimension of [rows, cols]. Row statistics in double.
#include <cstdint>

namespace eat::cpu {

template <typename T> void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols);
// dx = y * (dy - sum(dy * y)) per row.
template <typename T> void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols);

}  // namespace eat::cpu
