#pragma once
// Tiled softmax attention with an online softmax (FlashAttention-2 style): O(T) extra memory.
// Queries are taken kAttentionQueryTile rows at a time and keys kAttentionKeyTile at a time; key
// tiles wholly outside the causal / sliding-window band are skipped and only tiles cut by the
// band's edge are masked. Persistent keys (AttentionDims::prefix) come in key tiles of their own,
// visited first by every query tile and never masked. The forward keeps just the output and each
// row's log-sum-exp L; the backward recomputes the probabilities tile by tile from L.
//
// Work is split over (batch, head, tile) in the forward, over heads or tiles in the backward, and
// every output element is summed by one thread in a fixed order: results are bit-identical from
// run to run and across thread counts, with no atomics.
#include <cstdint>

#include "kernels/attention_band.h"

namespace eat::cpu {

inline constexpr int64_t kAttentionQueryTile = 64;  // Br: query rows per tile
inline constexpr int64_t kAttentionKeyTile = 64;    // Bc: key rows per tile

// out [B, T, H, e] and lse [B, H, T] (log of each query row's softmax denominator, scores scaled).
template <typename T>
void attention_tiled_forward(const T* q, const T* k, const T* v, T* out, T* lse, const AttentionDims& dims);

// Gradients from the forward's out and lse and the upstream gradient dout [B, T, H, e]. Any of
// dq, dk, dv may be null when not wanted. Picks one of the two schedules below by how many heads
// there are to share among the threads; they give the same bits.
template <typename T>
void attention_tiled_backward(const T* q, const T* k, const T* v, const T* out, const T* lse, const T* dout, T* dq,
                              T* dk, T* dv, const AttentionDims& dims);

// One task per (batch, head): each (query tile, key tile) pair's probabilities are rebuilt once
// and feed dq, dk and dv. The least work, but no more tasks than heads.
template <typename T>
void attention_tiled_backward_by_head(const T* q, const T* k, const T* v, const T* out, const T* lse, const T* dout,
                                      T* dq, T* dk, T* dv, const AttentionDims& dims);

// Two passes: one task per key tile for dk and dv, one per query tile for dq (the probabilities
// are rebuilt in each, the price of many tasks with no races).
template <typename T>
void attention_tiled_backward_by_tile(const T* q, const T* k, const T* v, const T* out, const T* lse, const T* dout,
                                      T* dq, T* dk, T* dv, const AttentionDims& dims);

}  // namespace eat::cpu
