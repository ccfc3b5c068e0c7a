#pragma once
// Fills device memory with one element repeated (Tensor::fill_ on CUDA).
#include <cstddef>
#include <cstdint>

namespace eat::cuda {

// Writes the element_size bytes at `element` (host memory; 1, 2, 4 or 8 bytes) into each of the
// n elements of dst, queued on compute_stream(). The caller encodes the value in the tensor's
// dtype, so the conversion is the CPU's and a fill of 0.1 gives the same bits on both devices.
void fill_pattern(void* dst, const void* element, size_t element_size, int64_t n);

}  // namespace eat::cuda
