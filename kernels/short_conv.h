#pragma once
// Causal depthwise convolution over time: x [B, T, C], w [C, k], bias [C] (may be null):
// y[b, t, c] = bias[c] + sum_{i<k} w[c, i] x[b, t - k + 1 + i, c], zero before the start.
#include <cstdint>

#include "kernels/backends.h"

namespace eat {

EAT_DECLARE_KERNELS(
template <typename T>
void short_conv_forward(const T* x, const T* w, const T* bias, T* y, int64_t B, int64_t T_, int64_t C, int64_t k);
// dx, dw, dbias may each be null. The weight and bias sums run over (b, t) in a fixed order (CPU
// threads own channel blocks; the device sums fixed row chunks, then the chunks in order).
template <typename T>
void short_conv_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* dbias, int64_t B, int64_t T_, int64_t C,
                         int64_t k);
)

}  // namespace eat
