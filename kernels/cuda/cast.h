#pragma once
// Element type conversion between two device buffers (Tensor::to(DType) and copy_from on CUDA).
#include <cstdint>

#include "base/dtype.h"

namespace eat::cuda {

// dst[i] = src[i] converted from `from` to `to`, for n elements, queued on compute_stream().
// Rounding matches the CPU conversion: through f64, except f32 <-> bf16 which go through f32
// (the same result, since every f32 and bf16 is exact in f64).
void cast(const void* src, DType from, void* dst, DType to, int64_t n);

}  // namespace eat::cuda
