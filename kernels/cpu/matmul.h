#pragma once
// Dense matrix products on row-major buffers, through Eigen's GEMM (OpenMP-parallel when called
// outside a parallel region, single-threaded inside one).
#include <cstdint>

namespace eat::cpu {

// C[M, N] (+)= op(A) op(B), where op(A) is [M, K] (A stored [K, M] when trans_a) and op(B) is
// [K, N] (B stored [N, K] when trans_b). accumulate adds into C instead of overwriting it.
template <typename T>
void gemm(const T* a, const T* b, T* c, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
          bool accumulate);

// `batch` independent products; a stride of 0 means that operand is shared by every batch.
// Parallel over the batch when there are enough products to keep every thread busy, otherwise
// each product uses all threads.
template <typename T>
void gemm_batched(int64_t batch, const T* a, int64_t stride_a, const T* b, int64_t stride_b, T* c, int64_t stride_c,
                  int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, bool accumulate);

// out[j] = sum_i x[i, j] over rows, for x [rows, cols]: the bias gradient. Fixed summation order.
template <typename T>
void column_sums(const T* x, T* out, int64_t rows, int64_t cols);

// out[j] += bias[j] for every row of out [rows, cols].
template <typename T>
void add_row_vector(T* out, const T* bias, int64_t rows, int64_t cols);

}  // namespace eat::cpu
