#pragma once
// The CPU's own f32 GEMM for AVX-512 builds, behind cpu::gemm<float> (matmul.cpp): C[M, N] (+)=
// op(A) op(B) with the same arguments. Eigen's product, which runs everything else, packs both
// operands for every block of rows and clears C before it sums into it; a layer's product (a few
// thousand token rows against a weight of a few hundred KB) paid for that on every call. Here:
//  - op(B) is packed once per call into 32-column panels, shared by every thread;
//  - op(A)'s rows are read where they lie (a layer's activations), or, when A is stored transposed
//    (a weight gradient's dY^T), copied 12 rows at a time into a small panel;
//  - each 12 x 32 block of C is summed in registers and stored once per inner block, the first
//    store overwriting C: C is never cleared and never read without accumulate.
// Every element of C is one chain of fused multiply-adds over the inner index in order, in blocks
// that depend only on K: its bits do not depend on the thread count, on which rows or columns
// share its block, or on M and N.
#include <cstdint>

namespace eat::cpu {

// Whether this build has the kernel (AVX-512F); when false packed_gemm must not be called.
bool packed_gemm_available();

// Whether a product of this shape should run here rather than in Eigen: large enough for packing
// B to pay off.
bool packed_gemm_worth(int64_t m, int64_t n, int64_t k);

void packed_gemm(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
                 bool accumulate);

}  // namespace eat::cpu
