#include "kernels/cpu/copy_rows.h"

#include <cstdint>
#include <cstring>

#include "kernels/cpu/parallel.h"

namespace eat::cpu {

void copy_rows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) {
  if (width == 0 || rows == 0) return;
  const auto n = static_cast<int64_t>(rows);
  // The work in 4-byte words, as the other kernels count elements.
#pragma omp parallel for schedule(static) if(parallel_worth(static_cast<int64_t>(width * rows / 4)))
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(static_cast<char*>(dst) + static_cast<size_t>(i) * dst_pitch,
                static_cast<const char*>(src) + static_cast<size_t>(i) * src_pitch, width);
}

}  // namespace eat::cpu
