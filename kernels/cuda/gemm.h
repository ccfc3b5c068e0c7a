#pragma once
// Dense matrix products on row-major device buffers through cuBLAS, queued on compute_stream().
// The same contract as cpu::gemm / cpu::gemm_batched (kernels/cpu/matmul.h). T is float or
// eat::bf16; bf16 products read and write bf16 and accumulate in f32.
#include <cstdint>

#include "base/dtype.h"

namespace eat::cuda {

// Whether f32 products may round their inputs to TF32 on tensor cores (about 10 mantissa bits,
// several times faster). Off by default: f32 means f32 unless the user asks. Process-wide.
void set_allow_tf32(bool allow);
bool allow_tf32();

// As cpu::gemm: C[M, N] (+)= op(A) op(B) with A, B, C row-major. Without accumulate, C is never
// read, so it may hold anything (NaN included).
template <typename T>
void gemm(const T* a, const T* b, T* c, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
          bool accumulate);

// As cpu::gemm_batched; outputs must not overlap (stride_c >= M * N when batch > 1).
template <typename T>
void gemm_batched(int64_t batch, const T* a, int64_t stride_a, const T* b, int64_t stride_b, T* c, int64_t stride_c,
                  int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, bool accumulate);

}  // namespace eat::cuda
