#pragma once
// Deterministic column sums of a [rows, cols] product that is never stored: a first kernel (owned
// by the op) writes f32 partial sums of fixed row chunks into partial[chunks, cols], then
// column_sums_finish adds the chunks in order. No float atomics: the same sizes always give the
// same bits.
#include <cstdint>

namespace eat::cuda {

// Rows per chunk and number of chunks for `rows` rows (a function of rows only).
int64_t column_chunk_rows(int64_t rows);
int64_t column_chunks(int64_t rows);

// The f32 partial sums [column_chunks(rows), cols] of one kernel call, device scratch given back
// when it goes out of scope: the caching allocator hands the block out again only to work queued
// after the launches that used it (everything runs on compute_stream()).
class ColumnPartials {
 public:
  ColumnPartials(int64_t rows, int64_t cols);
  ~ColumnPartials();
  ColumnPartials(const ColumnPartials&) = delete;
  ColumnPartials& operator=(const ColumnPartials&) = delete;
  int64_t chunks() const { return chunks_; }
  float* data() const { return data_; }

 private:
  int64_t chunks_;
  float* data_;
};

// out[c] = sum_{k < chunks} partial[k * cols + c], k in order.
template <typename T>
void column_sums_finish(const float* partial, int64_t chunks, int64_t cols, T* out);

}  // namespace eat::cuda
