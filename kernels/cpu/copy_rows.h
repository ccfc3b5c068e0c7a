#pragma once
// Strided copies between host buffers, spread over the threads: one thread's memcpy reaches a
// fraction of the memory bandwidth, and the joined projections (split_last) move tens of MB a
// step this way.
#include <cstddef>
#include <vector>

namespace eat::cpu {

// The CPU side of cuda::copy_rows: `rows` blocks of `width` bytes, the i-th read at
// src + i src_pitch and written at dst + i dst_pitch. Width must not exceed either pitch.
void copy_rows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows);

// A matrix of `rows` rows of sum(widths) bytes (one after another) and its column blocks as
// separate [rows, widths[i]] buffers, in one pass over the rows. split_columns copies the blocks
// out to the parts; join_columns copies them back in, zeroing the columns of a null part.
void split_columns(const void* src, const std::vector<void*>& parts, const std::vector<size_t>& widths, size_t rows);
void join_columns(void* dst, const std::vector<const void*>& parts, const std::vector<size_t>& widths, size_t rows);

}  // namespace eat::cpu
