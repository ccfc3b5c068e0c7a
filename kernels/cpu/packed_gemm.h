#pragma once
// The CPU's own f32 GEMM for AVX-512 and AVX2 builds, behind cpu::gemm<float> (matmul.cpp): C[M, N] (+)=
// op(A) op(B) with the same arguments. Eigen's product, which runs everything else, packs both
// operands for every block of rows and clears C before it sums into it; a layer's product (a few
// thousand token rows against a weight of a few hundred KB) paid for that on every call. Here:
//  - op(B) is packed once per call into panels two vectors wide (32 columns with AVX-512, 16 with
//    AVX2), shared by every thread;
//  - op(A)'s rows are read where they lie (a layer's activations), or, when A is stored transposed
//    (a weight gradient's dY^T), copied a tile of rows at a time (12 with AVX-512, 6 with AVX2)
//    into a small panel;
//  - each tile of C (12 x 32, or 6 x 16) is summed in registers over an inner block (at most 384
//    long) from zero, then stored, or added to C: the first store overwrites C, so C is never
//    cleared and never read without accumulate.
// Every element of C is, per inner block in order, one chain of fused multiply-adds over the block
// from zero, added to the element: blocked sums, whose rounding grows with the block's length and
// their count rather than with K (a weight gradient sums over all of a batch's tokens). The
// blocks depend only on K, so an element's bits do not depend on the thread count, on which rows
// or columns share its tile, or on M and N.
#include <cstdint>
#include <vector>

namespace eat::cpu {

// The vector widths in bits this build has a kernel for, widest first: {512, 256} with AVX-512,
// {256} with AVX2 alone, none without either.
std::vector<int> packed_gemm_widths();

// Whether this build has the kernel (AVX-512F, or AVX2 with FMA); when false packed_gemm must not
// be called.
bool packed_gemm_available();

// Whether a product of this shape should run here rather than in Eigen: large enough for packing
// B to pay off, and never where the build has no kernel.
bool packed_gemm_worth(int64_t m, int64_t n, int64_t k);

// vector_bits: 0 for the widest kernel (what cpu::gemm runs), or one of packed_gemm_widths() (the
// tests run the AVX2 kernel on AVX-512 machines too).
void packed_gemm(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
                 bool accumulate, int vector_bits = 0);

// C = R + A op(B) (A [M, K] as stored; R [M, N], C's shape, not overlapping C): a layer's output
// projection written onto the residual stream. R is added to each element after its last inner
// block, so C's bits are those of R + packed_gemm's product, without the product's own pass.
void packed_gemm_onto(const float* a, const float* b, const float* r, float* c, int64_t m, int64_t n, int64_t k,
                      bool trans_b, int vector_bits = 0);

// C = A op(B) (A [M, K] as stored) with the bits of packed_gemm, and each tile of C's rows
// [row, row + rows) handed to done.fn(done.context, row, rows) once every element of it is final,
// every row in exactly one call. The call comes on the thread that computed the rows, right
// after, while they are in its cache: a gated MLP's gate act(a) * b is made there from its joined
// projection [a | b] (kernels/cpu/glu_gate.cpp) instead of in a pass that reads the projection
// back from memory.
struct RowsDone {
  void (*fn)(void* context, int64_t row, int64_t rows);
  void* context;
};
void packed_gemm_rows_done(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, bool trans_b,
                           const RowsDone& done, int vector_bits = 0);

// C = op(A) op(B) with C's columns in parts side by side, each its own tensor: part i is
// [M, widths[i]] at outs[i] (a joined projection's outputs, written where they go rather than
// joined and then copied apart). The bits are those of packed_gemm into one C: each part's columns
// go in panels of their own, the last of a part narrower where its width asks. With `done`, each
// tile of rows is handed over once final in every part, as packed_gemm_rows_done does (a q or k
// projection's RoPE or SiLU made in cache: framework/ops/joins.cpp).
void packed_gemm_into_parts(const float* a, const float* b, const std::vector<float*>& outs,
                            const std::vector<int64_t>& widths, int64_t m, int64_t k, bool trans_a, bool trans_b,
                            const RowsDone* done = nullptr, int vector_bits = 0);

// C (+)= op(A) op(B) with A's stored columns in parts side by side, each its own tensor: part i
// is [rows, widths[i]] at parts[i] (a joined projection's output gradients, never joined). With
// trans_a, A is stored [K, M], M the widths' sum, and the bits are packed_gemm's on the joined A.
// Without, A is [M, K], K the sum, and the inner dimension's blocks follow the parts (none crosses
// two), so the bits are those of its own blocks.
void packed_gemm_from_parts(const std::vector<const float*>& parts, const std::vector<int64_t>& widths, const float* b,
                            float* c, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, bool accumulate,
                            int vector_bits = 0);

}  // namespace eat::cpu
