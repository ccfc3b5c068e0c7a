#pragma once
// Softmax attention on the GPU, FlashAttention-2 style: the same layout, masks (causal, sliding
// window, non-causal, keys longer than the queries at query_offset) and scale as the CPU tiled
// kernel (kernels/cpu/attention_tiled.h), with O(T) memory. The forward keeps the output and each
// row's log-sum-exp (natural log, f32); the backward recomputes the probabilities from it, in one
// pass over key tiles for dK and dV and one over query tiles for dQ: every gradient element is
// summed by one thread block in a fixed order, with no atomics, so results are deterministic.
//
// T is the storage type (float or eat::bf16); products accumulate in f32 (bf16 on tensor cores)
// and the softmax statistics are f32. Head widths up to 128.
#include "kernels/attention_band.h"

namespace eat::cuda {

inline constexpr int64_t kFlashMaxHeadDim = 128;

// out [B, T, H, e], lse [B, H, T].
template <typename T>
void attention_flash_forward(const T* q, const T* k, const T* v, T* out, float* lse, const AttentionDims& dims);

// dq, dk, dv may be null (not wanted). rowdot is scratch for B * H * T floats (dO . O per row).
template <typename T>
void attention_flash_backward(const T* q, const T* k, const T* v, const T* out, const float* lse, const T* dout, T* dq,
                              T* dk, T* dv, float* rowdot, const AttentionDims& dims);

}  // namespace eat::cuda
