#pragma once
// Softmax attention on q, k [B, T, H, d], v [B, T, H, e] (row stride H*d / H*e), two ways:
//  - naive: per (batch, head) the whole T x T score matrix; the reference.
//  - tiled: FlashAttention-2 style online softmax over Br x Bc tiles, O(T) extra memory; the
//    forward saves only the per-row log-sum-exp L [B, H, T]; the backward recomputes the tiles.
// Masks: causal (key s <= query t), optionally a window (s >= t - window_left), or none.
#include <cstdint>

namespace eat::cpu {

struct AttentionShape {
  int64_t B, T, H, d, e;
  bool causal;
  int64_t window_left;  // -1: no window
  double scale;
};

// Tile sizes of the tiled kernel: query rows x key columns.
constexpr int64_t kAttentionTileQ = 64;
constexpr int64_t kAttentionTileK = 64;

template <typename T> void attention_naive_forward(const AttentionShape& s, const T* q, const T* k, const T* v, T* o);
// dq, dk, dv are overwritten.
template <typename T>
void attention_naive_backward(const AttentionShape& s, const T* q, const T* k, const T* v, const T* dout, T* dq, T* dk, T* dv);

// lse [B, H, T] receives each row's log-sum-exp of the scaled scores.
template <typename T> void attention_tiled_forward(const AttentionShape& s, const T* q, const T* k, const T* v, T* o, T* lse);
template <typename T>
void attention_tiled_backward(const AttentionShape& s, const T* q, const T* k, const T* v, const T* o, const T* lse,
                              const T* dout, T* dq, T* dk, T* dv);

}  // namespace eat::cpu
