#pragma once
// The bias parts of linear on device: adding a bias to every row, and its gradient (column sums).
// T is float or eat::bf16 (f32 arithmetic inside); queued on compute_stream().
#include <cstdint>

#include "base/dtype.h"

namespace eat::cuda {

// out[i, j] += bias[j] for out [rows, cols].
template <typename T>
void add_row_vector(T* out, const T* bias, int64_t rows, int64_t cols);

// out[j] = sum_i x[i, j] for x [rows, cols], summed in f32 in a fixed order (deterministic).
template <typename T>
void column_sums(const T* x, T* out, int64_t rows, int64_t cols);

}  // namespace eat::cuda
