#pragma once
// Normalisations over the last dimension of [rows, cols]. Row statistics are RowStat: double on
// the CPU, f32 on the device (kernels/backends.h).
#include <cstdint>

#include "kernels/backends.h"

namespace eat {

EAT_DECLARE_KERNELS(
// y = x * r * w with r = rsqrt(mean(x^2) + eps); w may be null (SimpleRMSNorm). Saves r per row.
template <typename T>
void rms_norm_forward(const T* x, const T* w, T* y, RowStat* r, int64_t rows, int64_t cols, double eps);
// dx = r * (dy*w - xhat * mean(dy*w * xhat)), xhat = x * r; dw = sum_rows dy * xhat (fixed order).
// dx and dw may be null. accumulate_dx adds dx to what dx holds, with the bits of an add of the
// two (a residual stream's gradient so far, autograd::gradient_so_far).
template <typename T>
void rms_norm_backward(const T* x, const T* w, const RowStat* r, const T* dy, T* dx, T* dw, int64_t rows, int64_t cols,
                       bool accumulate_dx);

// SimpleRMSNorm times a gate of x's shape: y = (x r) * gate, r = rsqrt(mean(x^2) + eps) saved per
// row (TransNormerLLM's output gate on its normalised attention). The bits of rms_norm_forward
// without a weight and then a product with the gate.
template <typename T>
void rms_norm_gate_forward(const T* x, const T* gate, T* y, RowStat* r, int64_t rows, int64_t cols, double eps);
// With g = dy * gate: dx = r (g - xhat mean(g xhat)) (added to dx with accumulate_dx, as
// rms_norm_backward does) and dgate = dy * xhat; either may be null. The bits of mul's backward and
// then rms_norm_backward's.
template <typename T>
void rms_norm_gate_backward(const T* x, const T* gate, const RowStat* r, const T* dy, T* dx, T* dgate, int64_t rows,
                            int64_t cols, bool accumulate_dx);

// y = x / max(||x||, eps). Saves n = ||x|| per row.
template <typename T>
void l2_normalize_forward(const T* x, T* y, RowStat* norm, int64_t rows, int64_t cols, double eps);
// Where ||x|| > eps: dx = (dy - y * <dy, y>) / ||x||; else dx = dy / eps.
template <typename T>
void l2_normalize_backward(const T* x, const RowStat* norm, const T* dy, T* dx, int64_t rows, int64_t cols, double eps);
)

}  // namespace eat
