#pragma once
// Strided copies between host buffers, the CPU side of cuda::copy_rows: `rows` blocks of `width`
// bytes, the i-th read at src + i src_pitch and written at dst + i dst_pitch. The rows are spread
// over the threads: one thread's memcpy reaches a fraction of the memory bandwidth, and the
// joined projections (split_last) move tens of MB a step this way.
#include <cstddef>

namespace eat::cpu {

// Width must not exceed either pitch. Nothing to do when width or rows is 0.
void copy_rows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows);

}  // namespace eat::cpu
