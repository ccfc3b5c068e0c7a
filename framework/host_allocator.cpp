#include "framework/host_allocator.h"

#include <cstdlib>
#include <map>
#include <mutex>

#include "base/error.h"

namespace eat {

namespace {

constexpr size_t kAlignment = 64;               // one cache line, a full AVX-512 vector
constexpr size_t kLargeBlock = size_t{1} << 20;  // below this, malloc's own free lists do well
constexpr size_t kGranule = size_t{1} << 20;     // large blocks are sized in whole MiB
constexpr size_t kMaxCached = size_t{4} << 30;   // never hold more than this for reuse

size_t block_size(size_t nbytes) {
  if (nbytes < kLargeBlock) return (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  return (nbytes + kGranule - 1) / kGranule * kGranule;
}

struct Cache {
  std::mutex mutex;
  std::multimap<size_t, void*> free_blocks;  // size -> block
  size_t cached = 0;
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: tensors may be freed during static destruction
  return *c;
}

}  // namespace

void* host_alloc(size_t nbytes) {
  const size_t size = block_size(nbytes);
  if (size >= kLargeBlock) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end()) {
      void* p = it->second;
      c.free_blocks.erase(it);
      c.cached -= size;
      return p;
    }
  }
  void* p = std::aligned_alloc(kAlignment, size);
  EAT_CHECK(p != nullptr, "out of host memory allocating ", nbytes, " bytes");
  return p;
}

void host_free(void* ptr, size_t nbytes) {
  if (!ptr) return;
  const size_t size = block_size(nbytes);
  if (size >= kLargeBlock) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.cached + size <= kMaxCached) {
      c.free_blocks.emplace(size, ptr);
      c.cached += size;
      return;
    }
  }
  std::free(ptr);
}

}  // namespace eat
