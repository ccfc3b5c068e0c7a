#pragma once
// Causal depthwise convolution over time: x [B, T, C], w [C, k], bias [C] (may be null):
// y[b, t, c] = bias[c] + sum_{i<k} w[c, i] x[b, t - k + 1 + i, c], zero before the start.
#include <cstdint>

namespace eat::cpu {

template <typename T>
void short_conv_forward(const T* x, const T* w, const T* bias, T* y, int64_t B, int64_t T_, int64_t C, int64_t k);
// dx, dw, dbias may each be null. Threads own channel blocks, so the weight and bias sums run
// over (b, t) in a fixed order.
template <typename T>
void short_conv_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* dbias, int64_t B, int64_t T_, int64_t C,
                         int64_t k);

}  // namespace eat::cpu
