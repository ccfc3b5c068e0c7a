#pragma once
// Device tensors of more than 2^31 elements, made and checked cheaply: the rows (slices of axis 0)
// repeat a small random block, copied on the device; a few sampled rows get fresh values of their
// own, and only those rows are compared with the CPU kernel. A case that needs more device memory
// than is free reports that it was not run and returns.
#include <doctest/doctest.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

#include "framework/ops.h"
#include "gpu/gpu_compare.h"
#include "base/caching_allocator.h"
#include "runtime/cuda/memory.h"

namespace eat::test {

inline constexpr int64_t kTwoTo31 = int64_t{1} << 31;

// True when `bytes` of device memory are free (after the allocator's cache is given back);
// otherwise says so and which case did not run.
inline bool device_memory_for(size_t bytes, const char* what) {
  cuda::empty_cache();
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) free_bytes = 0;
  if (free_bytes >= bytes) return true;
  MESSAGE(what, ": not run, needs ", bytes >> 30, " GiB of device memory and ", free_bytes >> 30, " GiB are free");
  return false;
}

// Device bytes that `count` tensors of `shape` in dtype take: the allocator rounds each block up
// to its size class (a 4 GiB tensor takes 5 GiB).
inline size_t bytes_of(const Shape& shape, DType dtype, int count = 1) {
  const size_t one = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  return CachingAllocator::round_size(one) * static_cast<size_t>(count);
}

// A device tensor of `shape` whose rows repeat `period` random rows (values exact in dtype): one
// upload, then doubling copies on the device. (The sampled rows then get values of their own, so
// an index that lands on any other row reads values the reference never saw.)
inline Tensor periodic_rows(const Shape& shape, int64_t period, Generator& gen, DType dtype) {
  Tensor out = Tensor::empty(shape, dtype, Device::cuda);
  const int64_t rows = shape[0];
  Shape block = shape;
  block[0] = std::min(period, rows);
  slice_outer(out, 0, block[0]).copy_from(random_rounded(block, gen, dtype).to(dtype));
  const size_t row_bytes = out.nbytes() / static_cast<size_t>(rows);
  char* base = static_cast<char*>(out.raw_data());
  for (int64_t filled = block[0]; filled < rows;) {
    const int64_t n = std::min(filled, rows - filled);
    cuda::copy(base + filled * row_bytes, true, base, true, static_cast<size_t>(n) * row_bytes);
    filled += n;
  }
  return out;
}

// Gives row r of dev fresh random values (exact in dev's dtype) and returns them in f32 on the host.
inline Tensor fresh_row(const Tensor& dev, int64_t r, Generator& gen, double stddev = 1.0) {
  Shape shape = dev.shape();
  shape[0] = 1;
  Tensor host = random_rounded(shape, gen, dev.dtype(), stddev);
  slice_outer(dev, r, r + 1).copy_from(host.to(dev.dtype()));
  return host;
}

// Row r of dev on the host, in f32.
inline Tensor host_row(const Tensor& dev, int64_t r) { return slice_outer(dev, r, r + 1).to(Device::cpu).to(DType::f32); }

}  // namespace eat::test
