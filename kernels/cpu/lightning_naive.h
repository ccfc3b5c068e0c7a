#pragma once
// Decayed causal linear attention, the reference: per (batch, head) the whole T x T decayed score
// matrix, O = [(Q K^T) o M] V + diag(lambda^(t+1)) Q S0 with M(t, s) = lambda^(t-s) for s <= t.
// O(T^2) time and memory; the backward applies the transposed products.
// q, k [B, T, H, d], v [B, T, H, e], decay [H], states [B, H, d, e] (see lightning_common.h).
#include "kernels/cpu/lightning_common.h"

namespace eat::cpu {

// s0 may be null (zero initial state). o and final_state are overwritten.
template <typename T>
void lightning_naive_forward(const HeadShape& s, const double* decay, const T* q, const T* k, const T* v,
                             const T* s0, T* o, T* final_state);

// dout and dfinal are the gradients of o and of the final state. Each of dq, dk, dv, ds0 may be
// null (that gradient is not wanted); the others are overwritten.
template <typename T>
void lightning_naive_backward(const HeadShape& s, const double* decay, const T* q, const T* k, const T* v,
                              const T* s0, const T* dout, const T* dfinal, T* dq, T* dk, T* dv, T* ds0);

}  // namespace eat::cpu
