#pragma once
// The gated channel-mixer core y = act(a) * b, act = SiLU (SwiGLU) or identity (SGLU).
// CUDA: f32 arithmetic.
#include <cstdint>

#include "kernels/backends.h"

namespace eat {

EAT_DECLARE_KERNELS(
template <typename T> void glu_gate_forward(bool silu, const T* a, const T* b, T* y, int64_t n);
// da = dy * b * act'(a), db = dy * act(a); either output may be null.
template <typename T> void glu_gate_backward(bool silu, const T* a, const T* b, const T* dy, T* da, T* db, int64_t n);
// The same on the two halves of each row of ab [rows, 2n] (a joined gate-and-up projection):
// a = ab[:, :n], b = ab[:, n:], y and dy [rows, n]; dab [rows, 2n] gets da and db side by side,
// and may be ab itself (the gradient written over the saved projections, autograd::only_holder).
template <typename T> void glu_gate_halves_forward(bool silu, const T* ab, T* y, int64_t rows, int64_t n);
template <typename T>
void glu_gate_halves_backward(bool silu, const T* ab, const T* dy, T* dab, int64_t rows, int64_t n);
// The joined projection ab [rows, 2n] = x w^T (x [rows, in], w [2n, in] as a layer's weight is
// stored) and then y = act(a) * b from its halves, with the bits of gemm and then
// glu_gate_halves_forward. The CPU's packed GEMM makes y from each pair of tiles of ab as it
// finishes them, in cache, instead of reading ab back from memory in a pass of its own.
template <typename T>
void linear_glu_forward(bool silu, const T* x, const T* w, T* ab, T* y, int64_t rows, int64_t n, int64_t in);
// A gated MLP's down projection's input gradient dh [rows, n] = dy w_down (dy [rows, d], w_down
// [d, n] as a layer's weight is stored) and then the gate's backward, dab from ab and dh
// (glu_gate_halves_backward; dab may be ab), with the bits of gemm and then that kernel. The
// CPU's packed GEMM makes dab from each tile of dh's rows as it finishes them, so dh is never read
// back from memory (it is scratch).
template <typename T>
void glu_down_backward(bool silu, const T* dy, const T* w_down, const T* ab, T* dh, T* dab, int64_t rows, int64_t n,
                       int64_t d);
)

}  // namespace eat
