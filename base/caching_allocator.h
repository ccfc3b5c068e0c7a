#pragma once
// A caching allocator over a backend that hands out raw blocks (cudaMalloc/cudaFree for device
// memory). A training step allocates the same activations and gradients every time; asking the
// driver for each of them costs a device synchronisation per free, so freed blocks are kept in a
// free list keyed by their (rounded) size and handed out again.
//
// Reuse is safe without events because every kernel, copy and memset runs on one stream
// (cuda::compute_stream()): a block freed on the host is reused by work queued after the work
// that last touched it. Memory handed to another stream (collectives on comm_stream) must be
// ordered back onto the compute stream before its tensor is released.
//
// The bookkeeping is plain C++ so it is tested on the CPU with a fake backend.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/allocator_stats.h"

namespace eat {

// Where blocks come from. allocate returns nullptr when out of memory (the allocator then gives
// its cached blocks back and retries); any other failure throws.
class AllocatorBackend {
 public:
  virtual ~AllocatorBackend() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void release(void* p, size_t nbytes) = 0;
  // Called before cached blocks are given back: a device backend waits for queued work here.
  virtual void synchronize() {}
  virtual const char* name() const = 0;  // "cuda": names the memory in error messages
};

class CachingAllocator {
 public:
  explicit CachingAllocator(std::unique_ptr<AllocatorBackend> backend);
  ~CachingAllocator();  // gives every cached block back; live blocks are the owners' to free
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block of at least nbytes (nullptr for 0). Throws eat::Error naming the size and the
  // statistics when the backend is out of memory even after the cache was emptied.
  void* allocate(size_t nbytes);
  // Returns a block to the cache (nullptr is ignored; an unknown pointer throws).
  void release(void* p);
  // Gives every cached (free) block back to the backend.
  void empty_cache();
  AllocatorStats stats() const;
  void reset_peak();  // peaks restart from the current values

  // The size class of a request: small requests in 512-byte steps, larger ones in four steps
  // per power of two (at most 25% over), so the free list sees few distinct sizes.
  static size_t round_size(size_t nbytes);

 private:
  void empty_cache_locked();

  std::unique_ptr<AllocatorBackend> backend_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_;         // size -> cached block
  std::unordered_map<void*, size_t> live_;  // block -> its size
  AllocatorStats stats_;
};

}  // namespace eat
