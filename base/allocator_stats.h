#pragma once
// What a caching allocator holds, on its own so that tensor headers can report device memory
// without pulling in the allocator itself (caching_allocator.h).
#include <cstddef>
#include <cstdint>
#include <string>

namespace eat {

struct AllocatorStats {
  size_t allocated = 0;       // bytes in blocks held by live allocations (rounded sizes)
  size_t peak_allocated = 0;  // highest `allocated` since start or reset_peak()
  size_t reserved = 0;        // bytes held from the backend: live blocks plus the cache
  size_t peak_reserved = 0;
  int64_t backend_allocations = 0;  // calls to the backend's allocate that succeeded
  int64_t backend_releases = 0;
  int64_t cache_hits = 0;  // allocations served from the free list
};

// "allocated 1.5 MiB (peak 3.0 MiB), reserved 4.0 MiB (peak 4.0 MiB), 7 driver allocations"
std::string format_allocator_stats(const AllocatorStats& s);

}  // namespace eat
