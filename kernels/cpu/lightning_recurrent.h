#pragma once
// Decayed causal linear attention token by token through the d x e state:
// S_t = lambda S_{t-1} + k_t^T v_t, o_t = q_t S_t. O(T d e) time, O(d e) memory per head; the
// second reference and the decoding path. The backward re-runs the recurrence for dq and walks
// back over the tokens with the state gradient for dk, dv and dS0.
// q, k [B, T, H, d], v [B, T, H, e], decay [H], states [B, H, d, e] (see lightning_common.h).
#include "kernels/cpu/lightning_common.h"

namespace eat::cpu {

// s0 may be null (zero initial state). o and final_state are overwritten.
template <typename T>
void lightning_recurrent_forward(const HeadShape& s, const double* decay, const T* q, const T* k, const T* v,
                                 const T* s0, T* o, T* final_state);

// dout and dfinal are the gradients of o and of the final state. Each of dq, dk, dv, ds0 may be
// null (that gradient is not wanted); the others are overwritten.
template <typename T>
void lightning_recurrent_backward(const HeadShape& s, const double* decay, const T* q, const T* k,
                                  const T* v, const T* s0, const T* dout, const T* dfinal, T* dq, T* dk, T* dv, T* ds0);

}  // namespace eat::cpu
