#include "base/caching_allocator.h"

#include <algorithm>
#include <cstdio>

#include "base/error.h"

namespace eat {

namespace {

constexpr size_t kSmallStep = 512;                 // cudaMalloc aligns to 256; whole steps of 512
constexpr size_t kLargeFrom = size_t{1} << 20;     // from 1 MiB on, size classes grow with the size

std::string mib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

std::string format_allocator_stats(const AllocatorStats& s) {
  return "allocated " + mib(s.allocated) + " (peak " + mib(s.peak_allocated) + "), reserved " + mib(s.reserved) +
         " (peak " + mib(s.peak_reserved) + "), " + std::to_string(s.backend_allocations) + " driver allocations";
}

size_t CachingAllocator::round_size(size_t nbytes) {
  if (nbytes < kLargeFrom) return (nbytes + kSmallStep - 1) / kSmallStep * kSmallStep;
  size_t top = kLargeFrom;
  while (top <= nbytes / 2) top *= 2;  // top: the largest power of two <= nbytes
  const size_t step = top / 4;
  return (nbytes + step - 1) / step * step;
}

CachingAllocator::CachingAllocator(std::unique_ptr<AllocatorBackend> backend) : backend_(std::move(backend)) {
  EAT_CHECK(backend_ != nullptr, "CachingAllocator needs a backend");
}

CachingAllocator::~CachingAllocator() {
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    empty_cache_locked();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eat: giving cached %s memory back failed: %s\n", backend_->name(), e.what());
  }
}

void* CachingAllocator::allocate(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  const size_t size = round_size(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  void* p = nullptr;
  auto it = free_.find(size);
  if (it != free_.end()) {
    p = it->second;
    free_.erase(it);
    ++stats_.cache_hits;
  } else {
    p = backend_->allocate(size);
    if (!p && !free_.empty()) {  // out of memory: the cache may hold what is missing
      empty_cache_locked();
      p = backend_->allocate(size);
    }
    if (!p)
      fail(backend_->name(), ": out of memory allocating ", nbytes, " bytes (a block of ", size,
           " bytes) after giving every cached block back; ", format_allocator_stats(stats_));
    ++stats_.backend_allocations;
    stats_.reserved += size;
    stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  }
  live_.emplace(p, size);
  stats_.allocated += size;
  stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
  return p;
}

void CachingAllocator::release(void* p) {
  if (!p) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(p);
  EAT_CHECK(it != live_.end(), backend_->name(), ": release of ", p, ", which this allocator did not hand out");
  const size_t size = it->second;
  live_.erase(it);
  stats_.allocated -= size;
  free_.emplace(size, p);
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  empty_cache_locked();
}

void CachingAllocator::empty_cache_locked() {
  if (free_.empty()) return;
  backend_->synchronize();  // queued work may still read or write a cached block
  for (auto& [size, p] : free_) {
    backend_->release(p, size);
    stats_.reserved -= size;
    ++stats_.backend_releases;
  }
  free_.clear();
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_allocated = stats_.allocated;
  stats_.peak_reserved = stats_.reserved;
}

}  // namespace eat
