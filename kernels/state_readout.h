#pragma once
// The inter-segment terms of decayed linear attention: what an incoming state S (the state before
// token 0 of this segment) adds to each output, o_t = lambda^(t+1) q_t S, and the state a segment
// leaves behind from a zero start, m = sum_t lambda^(T-1-t) k_t^T v_t. LASP-2 gathers the m of
// every rank and adds the readout of the earlier ranks' to the local (zero-state) output.
// decay [H] is on the host; the device accumulates in f32 (the limits of
// kernels/cuda/lightning_chunked.h apply there).
#include "kernels/backends.h"
#include "kernels/head_shape.h"

namespace eat {

EAT_DECLARE_KERNELS(
// q [B, T, H, d], state [B, H, d, e] -> o [B, T, H, e] (overwritten).
template <typename T>
void state_readout_forward(const HeadShape& s, const double* decay, const T* q, const T* state, T* o);
// dq = lambda^(t+1) dO S^T; dstate = sum_t lambda^(t+1) q_t^T dO_t. Either output may be null.
template <typename T>
void state_readout_backward(const HeadShape& s, const double* decay, const T* q, const T* state, const T* dout, T* dq,
                            T* dstate);

// k [B, T, H, d], v [B, T, H, e] -> state [B, H, d, e] (overwritten).
template <typename T>
void state_sum_forward(const HeadShape& s, const double* decay, const T* k, const T* v, T* state);
// dk = lambda^(T-1-t) v_t dstate^T; dv = lambda^(T-1-t) k_t dstate. Either output may be null.
template <typename T>
void state_sum_backward(const HeadShape& s, const double* decay, const T* k, const T* v, const T* dstate, T* dk, T* dv);
)

}  // namespace eat
