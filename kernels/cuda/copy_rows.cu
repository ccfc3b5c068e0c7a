#include "kernels/cuda/copy_rows.h"

#include <atomic>
#include <cstdint>

#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/scalar.cuh"

namespace eat::cuda {

namespace {

std::atomic<bool> kernel_forced{false};

// The widest pitch the copy engine takes, queried once: a process drives one device (see stream.cu).
size_t max_copy_engine_pitch() {
  static const size_t bytes = [] {
    int device = 0, pitch = 0;
    EAT_CUDA_CHECK(cudaGetDevice(&device));
    EAT_CUDA_CHECK(cudaDeviceGetAttribute(&pitch, cudaDevAttrMaxPitch, device));
    return static_cast<size_t>(pitch);
  }();
  return bytes;
}

// Moves the blocks in units of U, one unit per thread and step of a grid-stride loop; offsets are
// 64-bit, so pitches and totals of any size are reached.
template <typename U>
__global__ void copy_rows_kernel(unsigned char* dst, size_t dst_pitch, const unsigned char* src, size_t src_pitch,
                                 size_t units_per_row, size_t units) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < units; i += stride) {
    const size_t row = i / units_per_row, col = i % units_per_row;
    reinterpret_cast<U*>(dst + row * dst_pitch)[col] = reinterpret_cast<const U*>(src + row * src_pitch)[col];
  }
}

template <typename U>
void launch_copy_kernel(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) {
  const size_t units_per_row = width / sizeof(U), units = units_per_row * rows;
  copy_rows_kernel<U><<<grid_for(static_cast<long long>(units)), 256, 0, compute_stream()>>>(
      static_cast<unsigned char*>(dst), dst_pitch, static_cast<const unsigned char*>(src), src_pitch, units_per_row,
      units);
  EAT_CUDA_CHECK_LAUNCH();
}

// The copy kernel with the widest unit (16, 8, 4, 2 or 1 bytes) that divides both addresses, both
// pitches and the width, so every access is aligned.
void copy_with_kernel(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) {
  const uintptr_t all = reinterpret_cast<uintptr_t>(dst) | reinterpret_cast<uintptr_t>(src) | dst_pitch | src_pitch | width;
  if (all % 16 == 0) return launch_copy_kernel<uint4>(dst, dst_pitch, src, src_pitch, width, rows);
  if (all % 8 == 0) return launch_copy_kernel<uint64_t>(dst, dst_pitch, src, src_pitch, width, rows);
  if (all % 4 == 0) return launch_copy_kernel<uint32_t>(dst, dst_pitch, src, src_pitch, width, rows);
  if (all % 2 == 0) return launch_copy_kernel<uint16_t>(dst, dst_pitch, src, src_pitch, width, rows);
  launch_copy_kernel<uint8_t>(dst, dst_pitch, src, src_pitch, width, rows);
}

}  // namespace

void copy_rows(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) {
  const cudaStream_t stream = compute_stream();
  if (width == 0 || rows == 0) return;
  EAT_CHECK(width <= dst_pitch && width <= src_pitch, "copy_rows: blocks of ", width, " bytes do not fit the pitches ",
            src_pitch, " (source) and ", dst_pitch, " (destination)");
  if (kernel_forced.load() || dst_pitch > max_copy_engine_pitch() || src_pitch > max_copy_engine_pitch()) {
    copy_with_kernel(dst, dst_pitch, src, src_pitch, width, rows);
    return;
  }
  // The copy engine walks the pitches itself: one call whatever the number of blocks.
  EAT_CUDA_CHECK(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, width, rows, cudaMemcpyDeviceToDevice, stream));
}

void force_copy_rows_kernel(bool on) { kernel_forced.store(on); }

}  // namespace eat::cuda
