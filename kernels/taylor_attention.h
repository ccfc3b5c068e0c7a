#pragma once
// Taylor linear attention (BASED): the causal kernel A_ij = 1 + s_ij + s_ij^2 / 2 with
// s_ij = q_i . k_j / sqrt(f), for q, k [B, T, H, f] and v [B, T, H, e] (HeadShape with d = f).
// With the value row extended by a 1, v'_j = [v_j, 1] (width e + 1), one product gives both the
// numerator and the normaliser: [N_i | Z_i] = phi(q_i) [S0 | z0] + sum_{j<=i} A_ij v'_j, where
// phi(x) = [1, x / f^(1/4), x_a x_b c_ab / sqrt(f) (a <= b)] (c_aa = 1/sqrt(2), else 1) is the
// symmetric feature map of D' = taylor_feature_dim(f) rows, so that phi(q) . phi(k) = A.
// States are [B, H, D', e + 1]: the numerator state in columns [0, e), the normaliser in column e;
// final = initial + sum_j phi(k_j)^T v'_j.
// Outputs: normalize: y_i = N_i / (Z_i + eps), and `denominator` [B, T, H] receives Z_i + eps
// for the backward; otherwise y_i = N_i and `denominator` may be null.
// Three forms compute the same function: parallel (the O(T^2) quadratic kernel, in tiles of
// `block` rows and columns), chunked (quadratic within blocks of `block` tokens, the state
// across them; O(T)), recurrent (token by token on the state; decoding).
#include <cstdint>

#include "kernels/backends.h"
#include "kernels/head_shape.h"

namespace eat {

// D' = 1 + f + f (f + 1) / 2: the rows of the symmetric second-order feature map.
inline int64_t taylor_feature_dim(int64_t f) { return 1 + f + f * (f + 1) / 2; }

struct TaylorKernelArgs {
  int64_t block = 64;  // tile (parallel) or chunk (chunked) length; unused by the recurrent form
  bool normalize = true;
  double eps = 1e-12;
  // y receives the unnormalised [N | Z] ([B, T, H, e + 1]) and dy is its gradient; normalize, eps
  // and the denominators unused. The CPU forms read it (their y is TaylorState<T>); callers use
  // taylor_chunked_sums_*, which set it.
  bool sums = false;
};

// The element type of states and state gradients: the storage type on the CPU (f32 or f64),
// f32 on CUDA whatever the storage (bf16 included), so prefix sums and their gradients keep f32.
namespace cpu {
template <typename T>
using TaylorState = T;
}
namespace cuda {
template <typename T>
using TaylorState = float;
}

// s0 may be null (zero initial state); y and final_state are overwritten.
// Backward: dy and dfinal are the gradients of y and of the final state; y and denominator are
// the forward's (read only when normalize). Each of dq, dk, dv, ds0 may be null (not wanted).
EAT_DECLARE_KERNELS(
template <typename T>
void taylor_parallel_forward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                             const TaylorState<T>* s0, T* y, TaylorState<T>* final_state, RowStat* denominator);
template <typename T>
void taylor_parallel_backward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                              const TaylorState<T>* s0, const T* y, const RowStat* denominator, const T* dy,
                              const TaylorState<T>* dfinal, T* dq, T* dk, T* dv, TaylorState<T>* ds0);
template <typename T>
void taylor_chunked_forward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                            const TaylorState<T>* s0, T* y, TaylorState<T>* final_state, RowStat* denominator);
template <typename T>
void taylor_chunked_backward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                             const TaylorState<T>* s0, const T* y, const RowStat* denominator, const T* dy,
                             const TaylorState<T>* dfinal, T* dq, T* dk, T* dv, TaylorState<T>* ds0);
template <typename T>
void taylor_recurrent_forward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                              const TaylorState<T>* s0, T* y, TaylorState<T>* final_state, RowStat* denominator);
template <typename T>
void taylor_recurrent_backward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                               const TaylorState<T>* s0, const T* y, const RowStat* denominator, const T* dy,
                               const TaylorState<T>* dfinal, T* dq, T* dk, T* dv, TaylorState<T>* ds0);

// Sequence parallelism's local pass (framework/ops.h, taylor_attention_sums): the chunked form
// from a zero state, writing the unnormalised sums [N | Z] [B, T, H, e + 1] (TaylorState<T>: f32
// on CUDA) in place of y, with no final state or denominators; the backward takes their gradient.
template <typename T>
void taylor_chunked_sums_forward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                                 TaylorState<T>* sums);
template <typename T>
void taylor_chunked_sums_backward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k, const T* v,
                                  const TaylorState<T>* dsums, T* dq, T* dk, T* dv);
)

// Instantiates one form's forward and backward for storage type T, inside eat::cpu or eat::cuda
// (the kernel files): EAT_TAYLOR_INSTANTIATE(chunked, float).
#define EAT_TAYLOR_INSTANTIATE(form, T)                                                                             \
  template void taylor_##form##_forward<T>(const HeadShape&, const TaylorKernelArgs&, const T*, const T*, const T*,   \
                                           const TaylorState<T>*, T*, TaylorState<T>*, RowStat*);                     \
  template void taylor_##form##_backward<T>(const HeadShape&, const TaylorKernelArgs&, const T*, const T*, const T*, \
                                            const TaylorState<T>*, const T*, const RowStat*, const T*,              \
                                            const TaylorState<T>*, T*, T*, T*, TaylorState<T>*);
#define EAT_TAYLOR_SUMS_INSTANTIATE(T)                                                                            \
  template void taylor_chunked_sums_forward<T>(const HeadShape&, const TaylorKernelArgs&, const T*, const T*,     \
                                               const T*, TaylorState<T>*);                                        \
  template void taylor_chunked_sums_backward<T>(const HeadShape&, const TaylorKernelArgs&, const T*, const T*,    \
                                                const T*, const TaylorState<T>*, T*, T*, T*);

}  // namespace eat
