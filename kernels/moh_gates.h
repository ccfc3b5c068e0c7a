#pragma once
// MoH's two-stage router (framework/ops.h, moh_gates), one token per row: shared_logits [N, h_s],
// routed_logits [N, R] and mix_logits [N, 2] give gates [N, h_s + R], routed_probs [N, R] and
// selected [N, R]. Kernels spread rows over threads; the row's arithmetic is written once, for
// both backends, in kernels/moh_gates_row.h.
#include <cstdint>

#include "kernels/backends.h"

namespace eat {

struct MohGatesShape {
  int64_t N;    // token rows
  int64_t h_s;  // shared heads; 0: no shared_logits, no mix_logits, the routed gates stand alone
  int64_t R;    // routed heads, 1 .. kMohMaxRouted
  int64_t K;    // routed heads selected per token, 1 .. R
};

// A row's selection is one 64-bit mask.
inline constexpr int64_t kMohMaxRouted = 64;

EAT_DECLARE_KERNELS(
// shared_logits and mix_logits are null when h_s = 0. selected is 1 where selected, else 0.
template <typename T>
void moh_gates_forward(const MohGatesShape& s, const T* shared_logits, const T* routed_logits, const T* mix_logits,
                       T* gates, T* routed_probs, T* selected);
// From dgates [N, h_s + R] and drouted_probs [N, R] (either may be null: zero), the gradients of the
// three logit sets (each may be null: not wanted). Softmaxes and the selection are recomputed from
// the logits.
template <typename T>
void moh_gates_backward(const MohGatesShape& s, const T* shared_logits, const T* routed_logits, const T* mix_logits,
                        const T* dgates, const T* drouted_probs, T* dshared_logits, T* drouted_logits, T* dmix_logits);
)

}  // namespace eat
