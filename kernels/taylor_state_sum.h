#pragma once
// The state a segment of Taylor linear attention (kernels/taylor_attention.h) leaves from a zero
// start, [S | z] = sum_t phi(k_t)^T [v_t | 1] ([B, H, D', e + 1], the symmetric feature packing):
// the final state of taylor_*_forward without its outputs, so that sequence parallelism can send
// it before the local attention runs. States are TaylorState<T> (f32 on CUDA).
#include "kernels/backends.h"
#include "kernels/head_shape.h"
#include "kernels/taylor_attention.h"

namespace eat {

EAT_DECLARE_KERNELS(
// k [B, T, H, f], v [B, T, H, e] -> state [B, H, D', e + 1] (overwritten).
template <typename T>
void taylor_state_sum_forward(const HeadShape& s, const T* k, const T* v, TaylorState<T>* state);
// dk = (d phi / dk)^T (dstate [v | 1]^T) per token; dv = phi(k) dS (the numerator columns of
// dstate). Either output may be null.
template <typename T>
void taylor_state_sum_backward(const HeadShape& s, const T* k, const T* v, const TaylorState<T>* dstate, T* dk, T* dv);
)

// Instantiates the forward and backward for storage type T, inside eat::cpu or eat::cuda (the
// kernel files): EAT_TAYLOR_STATE_SUM_INSTANTIATE(float).
#define EAT_TAYLOR_STATE_SUM_INSTANTIATE(T)                                                                        \
  template void taylor_state_sum_forward<T>(const HeadShape&, const T*, const T*, TaylorState<T>*);                \
  template void taylor_state_sum_backward<T>(const HeadShape&, const T*, const T*, const TaylorState<T>*, T*, T*);

}  // namespace eat
