#pragma once
// MoH's gated attention: softmax attention (the geometry of kernels/attention_band.h: q, k
// [B, T, H, d], v [B, T, H, e], causal band or sliding window, keys longer than the queries at
// query_offset) whose (query token, head) pairs are weighted by gates [B, T, H]:
//     y[b, t, h] = gates[b, t, h] O[b, t, h],   O = softmax(scale q k^T) v over the band.
// A pair whose gate is exactly 0 is inactive: its output row is 0 and nothing of it is computed,
// forward or backward (no scores, no probabilities, no dq row, no share of dk and dv); its key and
// value still serve every active query. Each head's active queries are gathered into dense tiles
// that the tiled online softmax walks, so the work falls with the active fraction.
//
// lse [B, H, T] (RowStat: f64 on the CPU, f32 on CUDA) holds each active row's log-sum-exp for
// the backward (0 on inactive rows), which recomputes the active rows' probabilities from it, with
// dO = gates dy and D = dO . O = dy . y:
//     dq, dk, dv as softmax attention's backward with dO,
//     dgates[b, t, h] = dy . O = D / gates   on active rows, 0 on inactive ones.
// An inactive pair's true dgate is dy . O, but its O is never computed; MoH's router gives no
// gradient through an unselected head's gate (it is 0 by selection), so 0 is what it needs.
#include "kernels/attention_band.h"
#include "kernels/backends.h"

namespace eat {

// Backward: every gradient pointer is written in full (overwritten, not accumulated).
EAT_DECLARE_KERNELS(
template <typename T>
void gated_attention_forward(const AttentionDims& dims, const T* q, const T* k, const T* v, const T* gates, T* y,
                             RowStat* lse);
template <typename T>
void gated_attention_backward(const AttentionDims& dims, const T* q, const T* k, const T* v, const T* gates,
                              const T* y, const RowStat* lse, const T* dy, T* dq, T* dk, T* dv, T* dgates);
)

// Instantiates the forward and backward for storage type T, inside eat::cpu or eat::cuda (the
// kernel files): EAT_GATED_ATTENTION_INSTANTIATE(float).
#define EAT_GATED_ATTENTION_INSTANTIATE(T)                                                                           \
  template void gated_attention_forward<T>(const AttentionDims&, const T*, const T*, const T*, const T*, T*,        \
                                           RowStat*);                                                               \
  template void gated_attention_backward<T>(const AttentionDims&, const T*, const T*, const T*, const T*, const T*, \
                                            const RowStat*, const T*, T*, T*, T*, T*);

}  // namespace eat
