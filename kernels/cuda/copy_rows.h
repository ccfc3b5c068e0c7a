#pragma once
// Strided copies between device buffers: `rows` blocks of `width` bytes, the i-th read at
// src + i src_pitch and written at dst + i dst_pitch. Packs and unpacks the time rows of
// [B, T, ...] tensors (one block per sequence) in a single call instead of one per block.
#include <cstddef>

namespace eat::cuda {

// Width must not exceed either pitch. Nothing to do when width or rows is 0.
void copy_rows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows);

}  // namespace eat::cuda
