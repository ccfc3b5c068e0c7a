#pragma once
// Strided copies between device buffers: `rows` blocks of `width` bytes, the i-th read at
// src + i src_pitch and written at dst + i dst_pitch. Packs and unpacks the time rows of
// [B, T, ...] tensors (one block per sequence) in a single call instead of one per block.
//
// The copy engine (cudaMemcpy2DAsync) takes pitches up to the device's cudaDevAttrMaxPitch, an int:
// below 2 GiB, which the rows of a long sequence at a wide model exceed (sequence parallelism at
// 131K f32 tokens of width 4096). Wider pitches go through a copy kernel with 64-bit offsets.
#include <cstddef>

namespace eat::cuda {

// Width must not exceed either pitch. Nothing to do when width or rows is 0.
void copy_rows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows);

// While set, every copy_rows call takes the copy kernel whatever the pitches (process-wide). For
// tests: the kernel path on small sizes.
void force_copy_rows_kernel(bool on);

}  // namespace eat::cuda
