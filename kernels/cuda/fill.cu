#include <cstring>

#include "runtime/cuda/check.h"
#include "kernels/cuda/fill.h"
#include "kernels/cuda/pointwise.cuh"
#include "kernels/cuda/scalar.cuh"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

template <typename U>
__global__ void fill_kernel(U* __restrict__ dst, U value, long long n) {
  EAT_GRID_STRIDE(i, n) dst[i] = value;
}

template <typename U>
void launch(void* dst, const void* element, int64_t n) {
  U value;
  std::memcpy(&value, element, sizeof(U));
  fill_kernel<U><<<grid_for(n), 256, 0, compute_stream()>>>(static_cast<U*>(dst), value, n);
  EAT_CUDA_CHECK_LAUNCH();
}

}  // namespace

void fill_pattern(void* dst, const void* element, size_t element_size, int64_t n) {
  if (n <= 0) return;
  switch (element_size) {
    case 1: launch<uint8_t>(dst, element, n); return;
    case 2: launch<uint16_t>(dst, element, n); return;
    case 4: launch<uint32_t>(dst, element, n); return;
    case 8: launch<uint64_t>(dst, element, n); return;
  }
  fail("fill_pattern: elements of ", element_size, " bytes are not supported (1, 2, 4 or 8)");
}

}  // namespace eat::cuda
