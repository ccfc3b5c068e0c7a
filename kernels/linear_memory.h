#pragma once
// Titans' linear neural memory M(k) = k W (W [d, e] per head) with momentum S, in the chunked dual
// form. For q, k [B, T, H, d], v [B, T, H, e] (HeadShape) and per-token gate logits [B, T, H]:
//     theta = max_lr sigmoid(theta_logit), eta = sigmoid(eta_logit), 1 - alpha = sigmoid(-alpha_logit).
// Within a chunk of L <= `chunk` tokens every inner gradient u_j = 2 k_j^T (k_j W0 - v_j) is taken
// at the chunk-start state (W0, S0); with P, N, G, beta, m, f of the chunk's gates
// (kernels/cpu/memory_gates.h) and E = K W0 - V:
//     O  = diag(beta) Q W0 + diag(f) Q S0 - 2 (G o tril(Q K^T)) E        (y_i read after token i)
//     Wb = beta_L W0 + f_L S0 - 2 K^T diag(g) E,   Sb = m_L S0 - 2 K^T diag(n) E
// (g, n: the last rows of G and N). The backward walks the chunks in reverse carrying the
// gradients of the chunk-end state (dWb, dSb); it recomputes each chunk's start state from the
// checkpoints the forward kept, one at every `checkpoint_every`-th chunk boundary.
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/head_shape.h"
#include "kernels/memory_checkpoints.h"

namespace eat {

struct LinearMemoryArgs {
  int64_t chunk = 16;            // b
  double max_lr = 0.1;           // theta's upper bound
  int64_t checkpoint_every = 1;  // chunks between kept states (>= 1)
  bool w0_shared = false;        // the initial W is [H, d, e], one for every sequence of the batch
  bool s0_shared = false;        // the same for the initial momentum
};

// Forward: w0, s0 may be null (zero); [B, H, d, e], or [H, d, e] when shared. y [B, T, H, e],
// w_final and s_final [B, H, d, e] and checkpoints [B, H, memory_checkpoints, 2, d, e]
// (W then S at each kept boundary) are overwritten.
// Backward: dy, dw_final, ds_final are the gradients of the outputs; each of dq, dk, dv, the
// three logit gradients [B, T, H], dw0 and ds0 (shaped as w0 and s0, summed over the batch when
// shared) may be null (not wanted).
EAT_DECLARE_KERNELS(
template <typename T>
void linear_memory_forward(const HeadShape& s, const LinearMemoryArgs& a, const T* q, const T* k, const T* v,
                           const T* theta_logit, const T* eta_logit, const T* alpha_logit, const MemoryState<T>* w0,
                           const MemoryState<T>* s0, T* y, MemoryState<T>* w_final, MemoryState<T>* s_final,
                           MemoryState<T>* checkpoints);
template <typename T>
void linear_memory_backward(const HeadShape& s, const LinearMemoryArgs& a, const T* q, const T* k, const T* v,
                            const T* theta_logit, const T* eta_logit, const T* alpha_logit,
                            const MemoryState<T>* checkpoints, const T* dy, const MemoryState<T>* dw_final,
                            const MemoryState<T>* ds_final, T* dq, T* dk, T* dv, T* dtheta_logit, T* deta_logit,
                            T* dalpha_logit, MemoryState<T>* dw0, MemoryState<T>* ds0);
)

// Instantiates the forward and backward for storage type T, inside eat::cpu or eat::cuda.
#define EAT_LINEAR_MEMORY_INSTANTIATE(T)                                                                          \
  template void linear_memory_forward<T>(const HeadShape&, const LinearMemoryArgs&, const T*, const T*, const T*,  \
                                         const T*, const T*, const T*, const MemoryState<T>*,                      \
                                         const MemoryState<T>*, T*, MemoryState<T>*, MemoryState<T>*,              \
                                         MemoryState<T>*);                                                         \
  template void linear_memory_backward<T>(const HeadShape&, const LinearMemoryArgs&, const T*, const T*, const T*, \
                                          const T*, const T*, const T*, const MemoryState<T>*, const T*,           \
                                          const MemoryState<T>*, const MemoryState<T>*, T*, T*, T*, T*, T*, T*,    \
                                          MemoryState<T>*, MemoryState<T>*);

}  // namespace eat
