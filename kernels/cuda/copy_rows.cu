#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/copy_rows.h"

namespace eat::cuda {

void copy_rows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) {
  const cudaStream_t stream = compute_stream();
  if (width == 0 || rows == 0) return;
  EAT_CHECK(width <= dst_pitch && width <= src_pitch, "copy_rows: blocks of ", width, " bytes do not fit the pitches ",
            src_pitch, " (source) and ", dst_pitch, " (destination)");
  // The copy engine walks the pitches itself: one call whatever the number of blocks.
  EAT_CUDA_CHECK(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, width, rows, cudaMemcpyDeviceToDevice, stream));
}

}  // namespace eat::cuda
