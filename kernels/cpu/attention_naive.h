#pragma once
// Reference softmax attention: for each (batch, head) the whole T x (prefix + T) score matrix is
// formed, masked, normalised and multiplied by V. O(T^2) memory per thread; simple enough to trust, and
// the yardstick the tiled kernel is tested against.
#include "kernels/attention_band.h"

namespace eat::cpu {

// out [B, T, H, e] = softmax(scale * q k^T, masked to the band and the persistent keys) v, per (batch, head).
template <typename T>
void attention_naive_forward(const T* q, const T* k, const T* v, T* out, const AttentionDims& dims);

// Gradients for the upstream gradient dout [B, T, H, e]. P is recomputed from q and k. Any of
// dq, dk, dv may be null when that gradient is not wanted.
template <typename T>
void attention_naive_backward(const T* q, const T* k, const T* v, const T* dout, T* dq, T* dk, T* dv,
                              const AttentionDims& dims);

}  // namespace eat::cpu
