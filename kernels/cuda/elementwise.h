#pragma once
// The device's full reductions (the elementwise arithmetic both devices share is declared in
// kernels/elementwise.h). T is float or eat::bf16; sums are f32 and stay on the device.
#include <cstdint>

namespace eat::cuda {

// y[0] = factor * sum(partial[0, count)) by one block of 1024 threads, in a fixed order
// (reproducible bits); partial and y are device pointers.
template <typename T> void sum_finish(const float* partial, int64_t count, float factor, T* y);
// Number of f32 partial sums sum_forward needs as scratch for n elements.
int64_t sum_partials(int64_t n);
// y[0] = factor * sum(x), or factor * sum(x^2) when `square`, in f32 over fixed contiguous
// chunks (one partial per chunk in `partial`, then the partials in order): reproducible bits.
// y is a device pointer; the result never leaves the device.
template <typename T, typename Y>
void sum_forward(const T* x, int64_t n, float factor, bool square, float* partial, Y* y);
// y[i] = value[0] * factor for a device scalar `value` (the backward of sum and mean).
template <typename T> void fill_scaled(const T* value, float factor, T* y, int64_t n);

}  // namespace eat::cuda
