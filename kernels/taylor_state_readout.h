#pragma once
// The incoming state's part of Taylor linear attention (kernels/taylor_attention.h), added to the
// sums [N | Z] of a pass from a zero state (taylor_chunked_sums_forward) and normalised as the
// attention kernels normalise: sequence parallelism runs the local pass while the state gather is
// in flight and this readout after it. For q [B, T, H, f], a state [S | z] [B, H, D', e + 1] and
// sums [B, T, H, e + 1] (both TaylorState<T>: f32 on CUDA):
//     [N | Z]_i = sums_i + phi(q_i) [S | z]
//     y_i = N_i / (Z_i + eps) (normalize; `denominator` [B, T, H] receives Z_i + eps), else N_i
// equal to the attention's output on the whole segment from that state.
#include "kernels/backends.h"
#include "kernels/head_shape.h"
#include "kernels/taylor_attention.h"

namespace eat {

EAT_DECLARE_KERNELS(
// s: q's B, T, H, f (d) and the value width e. a.block and a.sums are unused.
template <typename T>
void taylor_state_readout_forward(const HeadShape& s, const TaylorKernelArgs& a, const T* q,
                                  const TaylorState<T>* state, const TaylorState<T>* sums, T* y, RowStat* denominator);
// G = d[N | Z] (from dy, and y and the denominators when normalising) goes to dsums, which is
// required (the state gradient is summed from it); dq = P'(q)^T (G [S | z]^T) and
// dstate = sum_i phi(q_i)^T G_i. dq and dstate may be null.
template <typename T>
void taylor_state_readout_backward(const HeadShape& s, const TaylorKernelArgs& a, const T* q,
                                   const TaylorState<T>* state, const T* y, const RowStat* denominator, const T* dy,
                                   TaylorState<T>* dsums, T* dq, TaylorState<T>* dstate);
)

// Instantiates the forward and backward for storage type T, inside eat::cpu or eat::cuda.
#define EAT_TAYLOR_STATE_READOUT_INSTANTIATE(T)                                                                     \
  template void taylor_state_readout_forward<T>(const HeadShape&, const TaylorKernelArgs&, const T*,               \
                                                const TaylorState<T>*, const TaylorState<T>*, T*, RowStat*);        \
  template void taylor_state_readout_backward<T>(const HeadShape&, const TaylorKernelArgs&, const T*,              \
                                                 const TaylorState<T>*, const T*, const RowStat*, const T*,         \
                                                 TaylorState<T>*, T*, TaylorState<T>*);

}  // namespace eat
