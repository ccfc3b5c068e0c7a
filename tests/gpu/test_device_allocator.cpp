// The caching allocator on the device: reuse without driver calls, statistics, empty_cache, and a
// clear out-of-memory error that leaves the device usable.
#include <doctest/doctest.h>

#include <string>

#include "base/error.h"
#include "framework/storage.h"
#include "framework/tensor.h"
#include "gpu/gpu_guard.h"

using namespace eat;

TEST_CASE("device tensors reuse freed blocks without new driver allocations") {
  test::require_gpu();
  device_empty_cache();
  const AllocatorStats before = device_memory_stats();
  CHECK(before.reserved == before.allocated);  // nothing cached right after empty_cache
  void* first = nullptr;
  {
    Tensor t = Tensor::empty({1 << 20}, DType::f32, Device::cuda);  // 4 MiB: its own size class
    first = t.raw_data();
    const AllocatorStats s = device_memory_stats();
    CHECK(s.backend_allocations == before.backend_allocations + 1);
    CHECK(s.allocated == before.allocated + (size_t{4} << 20));
    CHECK(s.peak_allocated >= s.allocated);
  }
  const AllocatorStats freed = device_memory_stats();
  CHECK(freed.allocated == before.allocated);
  CHECK(freed.reserved == before.reserved + (size_t{4} << 20));  // kept for reuse
  for (int step = 0; step < 3; ++step) {  // a training loop: the same block every step
    Tensor t = Tensor::zeros({1 << 20}, DType::f32, Device::cuda);
    CHECK(t.raw_data() == first);
  }
  const AllocatorStats reused = device_memory_stats();
  CHECK(reused.backend_allocations == before.backend_allocations + 1);
  CHECK(reused.cache_hits >= before.cache_hits + 3);
  device_empty_cache();
  const AllocatorStats emptied = device_memory_stats();
  CHECK(emptied.reserved == before.reserved);
  CHECK(emptied.backend_releases == before.backend_releases + 1);
  CHECK(device_memory_summary().find("driver allocations") != std::string::npos);
}

TEST_CASE("device out of memory names the size and leaves the device usable") {
  test::require_gpu();
  const int64_t huge = int64_t{1} << 46;  // 256 TiB of f32
  std::string message;
  try {
    Tensor::empty({huge}, DType::f32, Device::cuda);
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK(message.find("cuda: out of memory allocating 281474976710656 bytes") != std::string::npos);
  CHECK(message.find("reserved") != std::string::npos);
  // The failed cudaMalloc must not surface as an error at the next kernel launch.
  Tensor t = Tensor::zeros({1000}, DType::f32, Device::cuda);
  t.fill_(2.5);
  for (double v : t.to_f64_vector()) CHECK(v == 2.5);
}
