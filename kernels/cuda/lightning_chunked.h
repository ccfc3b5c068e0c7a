#pragma once
// Decayed causal linear attention (Lightning Attention-2) on the GPU, with the semantics of
// kernels/cpu/lightning_chunked.h: S_t = lambda S_{t-1} + k_t^T v_t, o_t = q_t S_t, S_{-1} = S0,
// final state S_{T-1}; gradients of q, k, v and S0 from those of o and the final state. Every
// decay factor is lambda to a non-negative power.
//
// The chunk length is the kernel's own (kLightningChunk): it changes only the rounding, not the
// result, so LightningOptions::block tunes the CPU kernel alone. T is float or eat::bf16
// (storage; the state and every accumulation are f32). Head widths up to 128, heads up to 256.
#include <cstdint>

#include "kernels/head_shape.h"

namespace eat::cuda {

inline constexpr int64_t kLightningChunk = 64;
inline constexpr int64_t kLightningMaxHeadDim = 128;
inline constexpr int64_t kLightningMaxHeads = 256;

// q, k [B, T, H, d], v [B, T, H, e], states [B, H, d, e]; decay [H] on the host.
// s0 may be null (zero initial state).
template <typename T>
void lightning_chunked_forward(const HeadShape& s, const double* decay, const T* q, const T* k, const T* v,
                               const T* s0, T* o, T* final_state);

// dout, dfinal: gradients of o and of the final state. dq, dk, dv, ds0 may each be null.
template <typename T>
void lightning_chunked_backward(const HeadShape& s, const double* decay, const T* q, const T* k, const T* v,
                                const T* s0, const T* dout, const T* dfinal, T* dq, T* dk, T* dv, T* ds0);

}  // namespace eat::cuda
