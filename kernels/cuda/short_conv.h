#pragma once
// Causal depthwise convolution over time on the device (kernels/cpu/short_conv.h's counterpart):
// x [B, T, C], w [C, k], bias [C] (may be null):
// y[b, t, c] = bias[c] + sum_{i<k} w[c, i] x[b, t - k + 1 + i, c], zero before the start.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace eat::cuda {

template <typename T>
void short_conv_forward(const T* x, const T* w, const T* bias, T* y, int64_t B, int64_t T_, int64_t C, int64_t k,
                        cudaStream_t stream);
// dx, dw, dbias may each be null. dw and dbias are column sums over the B*T positions, reduced
// deterministically through `partial` (column_chunks(B * T_) * C * k floats; may be null when
// neither is wanted).
template <typename T>
void short_conv_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* dbias, float* partial, int64_t B, int64_t T_,
                         int64_t C, int64_t k, cudaStream_t stream);

}  // namespace eat::cuda
