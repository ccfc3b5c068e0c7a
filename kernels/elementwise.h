#pragma once
// Elementwise arithmetic on same-shaped buffers (CUDA: f32 arithmetic). The full reductions differ
// by device (the CPU returns the sum to the host, the device keeps it): kernels/cpu/elementwise.h
// and kernels/cuda/elementwise.h.
#include <cstdint>

#include "kernels/backends.h"

namespace eat {

EAT_DECLARE_KERNELS(
template <typename T> void add_forward(const T* a, const T* b, T* y, int64_t n);
template <typename T> void mul_forward(const T* a, const T* b, T* y, int64_t n);
// da = dy * b, db = dy * a (either output may be null when not needed)
template <typename T> void mul_backward(const T* a, const T* b, const T* dy, T* da, T* db, int64_t n);
// y = x * s (s rounded to T on the CPU, to f32 on the device); y may alias x.
template <typename T> void scale_forward(const T* x, double s, T* y, int64_t n);
)

}  // namespace eat
