#pragma once
// Elementwise arithmetic on same-shaped buffers (the device computes in f32), and the full
// reductions, which differ by device: the CPU returns the sum to the host, the device keeps it on
// the device (no synchronisation).
#include <cstdint>

#include "kernels/backends.h"

namespace eat {

EAT_DECLARE_KERNELS(
template <typename T> void add_forward(const T* a, const T* b, T* y, int64_t n);
template <typename T> void mul_forward(const T* a, const T* b, T* y, int64_t n);
// da = dy * b, db = dy * a (either output may be null when not needed; da may be dy)
template <typename T> void mul_backward(const T* a, const T* b, const T* dy, T* da, T* db, int64_t n);
// y = x * s (s rounded to T on the CPU, to f32 on the device); y may alias x.
template <typename T> void scale_forward(const T* x, double s, T* y, int64_t n);
)

namespace cpu {
// Sum of all elements in a fixed order (per-thread blocks of a static partition, then in order),
// accumulated in double so f32 sums do not drift with the thread count's block boundaries.
template <typename T> double sum_forward(const T* x, int64_t n);
template <typename T> void fill(T* y, T value, int64_t n);
}  // namespace cpu

namespace cuda {
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
}  // namespace cuda

}  // namespace eat
