#pragma once
// Dense matrix products on row-major buffers. On the CPU, f32 products of more than about a
// million multiply-adds on AVX-512 and AVX2 builds run in our own packed GEMM
// (kernels/cpu/packed_gemm.h); the rest in Eigen's (OpenMP-parallel when called outside a parallel
// region, single-threaded inside one; a product over many rows runs as fixed blocks of rows, one
// per task, and a weight gradient's A^T B over many rows is split along its inner dimension into
// fixed parts). cuBLAS on the device (bf16 products read and write bf16 and accumulate in f32).
#include <cstdint>

#include "kernels/backends.h"

namespace eat {

EAT_DECLARE_KERNELS(
// C[M, N] (+)= op(A) op(B), where op(A) is [M, K] (A stored [K, M] when trans_a) and op(B) is
// [K, N] (B stored [N, K] when trans_b). accumulate adds into C instead of overwriting it; without
// it C is never read, so it may hold anything (NaN included).
template <typename T>
void gemm(const T* a, const T* b, T* c, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, bool accumulate);

// C[M, N] = R + A op(B), A [M, K] as stored, R [M, N] not overlapping C: a layer's output
// projection written onto its residual stream. C's bits are those of gemm into C and then R + C,
// elementwise; the CPU's packed GEMM adds R as it stores C's last sums, one pass over memory fewer.
template <typename T>
void gemm_onto(const T* a, const T* b, const T* r, T* c, int64_t m, int64_t n, int64_t k, bool trans_b);

// `batch` independent products; a stride of 0 means that operand is shared by every batch.
// Outputs must not overlap (stride_c >= M * N when batch > 1). On the CPU parallel over the batch
// when there are enough products to keep every thread busy, otherwise each product uses all threads.
template <typename T>
void gemm_batched(int64_t batch, const T* a, int64_t stride_a, const T* b, int64_t stride_b, T* c, int64_t stride_c,
                  int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, bool accumulate);

// out[j] = sum_i x[i, j] over rows, for x [rows, cols]: the bias gradient. Fixed summation order.
template <typename T>
void column_sums(const T* x, T* out, int64_t rows, int64_t cols);

// out[j] += bias[j] for every row of out [rows, cols].
template <typename T>
void add_row_vector(T* out, const T* bias, int64_t rows, int64_t cols);
)

namespace cuda {
// Whether f32 products may round their inputs to TF32 on tensor cores (about 10 mantissa bits,
// several times faster). Off by default: f32 means f32 unless the user asks. Process-wide.
void set_allow_tf32(bool allow);
bool allow_tf32();
}  // namespace cuda

}  // namespace eat
