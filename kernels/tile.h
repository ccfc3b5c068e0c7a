#pragma once
// Repeating the last axis: x [rows, n] -> y [rows, times n] with y[i, r n + j] = x[i, j]
// (torch's Tensor.repeat on the last axis). RAT shares its ngroups low-rank q and k heads among
// the H heads this way: head h reads group h % ngroups. The backward sums the copies, in order.
#include <cstdint>

#include "kernels/backends.h"

namespace eat {

EAT_DECLARE_KERNELS(
template <typename T> void tile_last_forward(const T* x, T* y, int64_t rows, int64_t n, int64_t times);
template <typename T> void tile_last_backward(const T* dy, T* dx, int64_t rows, int64_t n, int64_t times);
)

}  // namespace eat
