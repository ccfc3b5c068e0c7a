#pragma once
// Normalisations over the last dimension of [rows, cols]. Row statistics in double.
#include <cstdint>

namespace eat::cpu {

// y = x * r * w with r = rsqrt(mean(x^2) + eps); w may be null (SimpleRMSNorm). Saves r per row.
template <typename T> void rms_norm_forward(const T* x, const T* w, T* y, double* r, int64_t rows, int64_t cols, double eps);
// dx = r * (dy*w - xhat * mean(dy*w * xhat)), xhat = x * r; dw = sum_rows dy * xhat (fixed order).
// dx and dw may be null.
template <typename T>
void rms_norm_backward(const T* x, const T* w, const double* r, const T* dy, T* dx, T* dw, int64_t rows, int64_t cols);

// y = x / max(||x||, eps). Saves n = ||x|| per row.
template <typename T> void l2_normalize_forward(const T* x, T* y, double* norm, int64_t rows, int64_t cols, double eps);
// Where ||x|| > eps: dx = (dy - y * <dy, y>) / ||x||; else dx = dy / eps.
template <typename T>
void l2_normalize_backward(const T* x, const double* norm, const T* dy, T* dx, int64_t rows, int64_t cols, double eps);

}  // namespace eat::cpu
