#pragma once
// Titans' two-layer MLP neural memory M(x) = silu(x W1) W2 per head (W1 [d, h], W2 [h, e]),
// trained at test time by gradient steps on ||M(k_t) - v_t||^2 with momentum and forgetting
// (framework/ops.h, mlp_memory), in the chunked dual form: every gradient of a chunk of b tokens
// is taken at the chunk-start state (W1, W2, S1, S2), and with the gate products of the chunk
// (P, N, G = P N, beta, m, f, g, n: kernels/cpu/memory_gates.h)
//   Z = K W1, A = silu(Z), E = 2 (A W2 - V), D = (E W2^T) o silu'(Z)
//   Hq = beta o Q W1 + f o Q S1 - (G o QK^T) D,  Aq = silu(Hq)
//   Y  = beta o Aq W2 + f o Aq S2 - (G o Aq A^T) E
//   W1' = beta_b W1 + f_b S1 - K^T (g o D),  S1' = m_b S1 - K^T (n o D)
//   W2' = beta_b W2 + f_b S2 - A^T (g o E),  S2' = m_b S2 - A^T (n o E)
// (o scales rows or multiplies elementwise; G o X keeps the lower triangle). The backward walks the
// chunks in reverse with the adjoints of the chunk-end state; it needs silu'' (the inner gradient
// holds silu'(Z)). Only the state entering every `checkpoint_every`-th chunk is kept by the
// forward (kernels/memory_checkpoints.h); the backward recomputes the states between from it.
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/memory_checkpoints.h"

namespace eat {

// q, k [B, T, H, d]; v, y [B, T, H, e]; gate logits [B, T, H]; W1 and S1 [B, H, d, hidden], W2 and
// S2 [B, H, hidden, e]; with shared_weights the initial W1 and W2 are [H, ...] for every sequence.
struct MlpMemoryShape {
  int64_t B, T, H, d, hidden, e;
  bool shared_weights = false;
  int64_t w1_size() const { return d * hidden; }
  int64_t w2_size() const { return hidden * e; }
  // One head's whole state: W1, W2, S1, S2 one after the other.
  int64_t state_size() const { return 2 * (w1_size() + w2_size()); }
};

struct MlpMemoryArgs {
  int64_t chunk = 16;            // b
  double max_lr = 0.1;           // theta = max_lr * sigmoid(theta_logit)
  int64_t checkpoint_every = 1;  // keep the state entering every this-many-th chunk (>= 1)
};

// Forward: s1 and s2 may be null (zero momenta); y, the final states and checkpoints
// [B, H, memory_checkpoints, state_size] are overwritten. Backward: dy and the four final-state
// gradients are required (zeros when unused); each input gradient may be null (not wanted); dw1
// and dw2 are [H, ...] with shared_weights (summed over the batch).
EAT_DECLARE_KERNELS(
template <typename T>
void mlp_memory_forward(const MlpMemoryShape& s, const MlpMemoryArgs& a, const T* q, const T* k, const T* v,
                        const T* theta_logit, const T* eta_logit, const T* alpha_logit,
                        const MemoryState<T>* w1, const MemoryState<T>* w2,
                        const MemoryState<T>* s1, const MemoryState<T>* s2, T* y,
                        MemoryState<T>* w1_out, MemoryState<T>* w2_out, MemoryState<T>* s1_out,
                        MemoryState<T>* s2_out, MemoryState<T>* checkpoints);
template <typename T>
void mlp_memory_backward(const MlpMemoryShape& s, const MlpMemoryArgs& a, const T* q, const T* k, const T* v,
                         const T* theta_logit, const T* eta_logit, const T* alpha_logit,
                         const MemoryState<T>* checkpoints, const T* dy, const MemoryState<T>* dw1_out,
                         const MemoryState<T>* dw2_out, const MemoryState<T>* ds1_out,
                         const MemoryState<T>* ds2_out, T* dq, T* dk, T* dv, T* dtheta_logit, T* deta_logit,
                         T* dalpha_logit, MemoryState<T>* dw1, MemoryState<T>* dw2,
                         MemoryState<T>* ds1, MemoryState<T>* ds2);
)

// Instantiates the forward and backward for storage type T inside eat::cpu or eat::cuda.
#define EAT_MLP_MEMORY_INSTANTIATE(T)                                                                                 \
  template void mlp_memory_forward<T>(const MlpMemoryShape&, const MlpMemoryArgs&, const T*, const T*, const T*,     \
                                      const T*, const T*, const T*, const MemoryState<T>*,                   \
                                      const MemoryState<T>*, const MemoryState<T>*,                   \
                                      const MemoryState<T>*, T*, MemoryState<T>*,                     \
                                      MemoryState<T>*, MemoryState<T>*, MemoryState<T>*,       \
                                      MemoryState<T>*);                                                      \
  template void mlp_memory_backward<T>(const MlpMemoryShape&, const MlpMemoryArgs&, const T*, const T*, const T*,    \
                                       const T*, const T*, const T*, const MemoryState<T>*, const T*,        \
                                       const MemoryState<T>*, const MemoryState<T>*,                  \
                                       const MemoryState<T>*, const MemoryState<T>*, T*, T*, T*, T*,  \
                                       T*, T*, MemoryState<T>*, MemoryState<T>*,                      \
                                       MemoryState<T>*, MemoryState<T>*);

}  // namespace eat
