#pragma once
// Normalisations over the last dimension of [rows, cols] on the device (kernels/cpu/norms.h's
// counterparts). Row statistics are f32 (the CPU keeps them in double).
#include <cuda_runtime_api.h>

#include <cstdint>

namespace eat::cuda {

// y = x * r * w with r = 1 / sqrt(mean(x^2) + eps); w may be null (SimpleRMSNorm). Saves r per row.
template <typename T>
void rms_norm_forward(const T* x, const T* w, T* y, float* r, int64_t rows, int64_t cols, float eps, cudaStream_t stream);
// dx = r * (dy*w - xhat * mean(dy*w * xhat)), xhat = x * r; dw = sum_rows dy * xhat, reduced
// deterministically through `partial` (column_chunks(rows) * cols floats; may be null without dw).
// dx and dw may be null.
template <typename T>
void rms_norm_backward(const T* x, const T* w, const float* r, const T* dy, T* dx, T* dw, float* partial, int64_t rows,
                       int64_t cols, cudaStream_t stream);

// y = x / max(||x||, eps). Saves ||x|| per row.
template <typename T>
void l2_normalize_forward(const T* x, T* y, float* norm, int64_t rows, int64_t cols, float eps, cudaStream_t stream);
// Where ||x|| > eps: dx = (dy - y * <dy, y>) / ||x||; else dx = dy / eps.
template <typename T>
void l2_normalize_backward(const T* x, const float* norm, const T* dy, T* dx, int64_t rows, int64_t cols, float eps,
                           cudaStream_t stream);

}  // namespace eat::cuda
