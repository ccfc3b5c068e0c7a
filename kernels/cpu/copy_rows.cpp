#include "kernels/cpu/copy_rows.h"

#include <cstdint>
#include <cstring>
#include <numeric>

#include "kernels/cpu/parallel.h"

namespace eat::cpu {

namespace {

// Whether moving `bytes` is worth the threads: the work in 4-byte words, as the other kernels
// count elements.
bool copy_worth_threads(size_t bytes) { return parallel_worth(static_cast<int64_t>(bytes / 4)); }

// f(row) for every row, over the threads when the bytes moved are worth it.
template <typename F>
void for_rows(size_t rows, size_t bytes, F&& f) {
  const auto n = static_cast<int64_t>(rows);
#pragma omp parallel for schedule(static) if(copy_worth_threads(bytes))
  for (int64_t i = 0; i < n; ++i) f(static_cast<size_t>(i));
}

}  // namespace

void copy_rows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) {
  if (width == 0 || rows == 0) return;
  for_rows(rows, width * rows, [&](size_t i) {
    std::memcpy(static_cast<char*>(dst) + i * dst_pitch, static_cast<const char*>(src) + i * src_pitch, width);
  });
}

void split_columns(const void* src, const std::vector<void*>& parts, const std::vector<size_t>& widths, size_t rows) {
  const size_t pitch = std::accumulate(widths.begin(), widths.end(), size_t{0});
  for_rows(rows, pitch * rows, [&](size_t i) {
    const char* row = static_cast<const char*>(src) + i * pitch;
    for (size_t p = 0; p < parts.size(); row += widths[p], ++p)
      if (widths[p] > 0) std::memcpy(static_cast<char*>(parts[p]) + i * widths[p], row, widths[p]);
  });
}

void join_columns(void* dst, const std::vector<const void*>& parts, const std::vector<size_t>& widths, size_t rows) {
  const size_t pitch = std::accumulate(widths.begin(), widths.end(), size_t{0});
  for_rows(rows, pitch * rows, [&](size_t i) {
    char* row = static_cast<char*>(dst) + i * pitch;
    for (size_t p = 0; p < parts.size(); row += widths[p], ++p) {
      if (widths[p] == 0) continue;
      if (parts[p])
        std::memcpy(row, static_cast<const char*>(parts[p]) + i * widths[p], widths[p]);
      else
        std::memset(row, 0, widths[p]);
    }
  });
}

}  // namespace eat::cpu
