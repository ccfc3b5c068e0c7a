#pragma once
// Softmax over the last dimension of [rows, cols] on the device (kernels/cpu/softmax.h's
// counterpart). Row statistics (max, sum, dot) in f32.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace eat::cuda {

template <typename T> void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols, cudaStream_t stream);
// dx = y * (dy - sum(dy * y)) per row.
template <typename T> void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace eat::cuda
