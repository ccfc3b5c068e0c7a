#pragma once
// Deterministic column sums of a [rows, cols] product that is never stored: a first kernel (owned
// by the op) writes f32 partial sums of fixed row chunks into partial[chunks, cols], then
// column_sums_finish adds the chunks in order. No float atomics: the same sizes always give the
// same bits.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace eat::cuda {

// Rows per chunk and number of chunks for `rows` rows (a function of rows only).
int64_t column_chunk_rows(int64_t rows);
int64_t column_chunks(int64_t rows);

// out[c] = sum_{k < chunks} partial[k * cols + c], k in order.
template <typename T>
void column_sums_finish(const float* partial, int64_t chunks, int64_t cols, T* out, cudaStream_t stream);

}  // namespace eat::cuda
