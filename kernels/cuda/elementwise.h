#pragma once
// Elementwise arithmetic and full reductions on the device (kernels/cpu/elementwise.h's
// counterparts). T is float or eat::bf16; arithmetic is f32. Every call is queued on `stream`.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace eat::cuda {

template <typename T> void add_forward(const T* a, const T* b, T* y, int64_t n, cudaStream_t stream);
template <typename T> void mul_forward(const T* a, const T* b, T* y, int64_t n, cudaStream_t stream);
// da = dy * b, db = dy * a (either output may be null).
template <typename T> void mul_backward(const T* a, const T* b, const T* dy, T* da, T* db, int64_t n, cudaStream_t stream);
// y = x * s; y may alias x.
template <typename T> void scale_forward(const T* x, float s, T* y, int64_t n, cudaStream_t stream);

// y[0] = factor * sum(partial[0, count)) by one block of 1024 threads, in a fixed order
// (reproducible bits); partial and y are device pointers.
template <typename T> void sum_finish(const float* partial, int64_t count, float factor, T* y, cudaStream_t stream);
// Number of f32 partial sums sum_forward needs as scratch for n elements.
int64_t sum_partials(int64_t n);
// y[0] = factor * sum(x), or factor * sum(x^2) when `square`, in f32 over fixed contiguous
// chunks (one partial per chunk in `partial`, then the partials in order): reproducible bits.
// y is a device pointer; the result never leaves the device.
template <typename T, typename Y>
void sum_forward(const T* x, int64_t n, float factor, bool square, float* partial, Y* y, cudaStream_t stream);
// y[i] = value[0] * factor for a device scalar `value` (the backward of sum and mean).
template <typename T> void fill_scaled(const T* value, float factor, T* y, int64_t n, cudaStream_t stream);

}  // namespace eat::cuda
