#pragma once
// Tiled softmax attention with an online softmax (FlashAttention-2 style): O(T) extra memory.
// Queries are taken kAttentionQueryTile rows at a time and keys kAttentionKeyTile at a time; key
// tiles wholly outside the causal / sliding-window band are skipped and only tiles cut by the
// band's edge are masked. Persistent keys (AttentionDims::prefix) come in key tiles of their own,
// visited first by every query tile and never masked. The forward keeps just the output and each
// row's log-sum-exp L; the backward recomputes the probabilities tile by tile from L.
//
// Work is split over (batch, head, tile) so even one head keeps every thread busy, and every
// output element is summed by one thread in a fixed order: results are bit-identical from run to
// run, with no atomics.
#include <cstdint>

#include "kernels/attention_band.h"

namespace eat::cpu {

inline constexpr int64_t kAttentionQueryTile = 64;  // Br: query rows per tile
inline constexpr int64_t kAttentionKeyTile = 64;    // Bc: key rows per tile

// out [B, T, H, e] and lse [B, H, T] (log of each query row's softmax denominator, scores scaled).
template <typename T>
void attention_tiled_forward(const T* q, const T* k, const T* v, T* out, T* lse, const AttentionDims& dims);

// Gradients from the forward's out and lse and the upstream gradient dout [B, T, H, e]. Any of
// dq, dk, dv may be null when not wanted. Two passes: one per key tile for dk and dv, one per
// query tile for dq (the probabilities are recomputed in each; that is the price of no races).
template <typename T>
void attention_tiled_backward(const T* q, const T* k, const T* v, const T* out, const T* lse, const T* dout, T* dq,
                              T* dk, T* dv, const AttentionDims& dims);

}  // namespace eat::cpu
