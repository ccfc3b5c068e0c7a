// The caching allocator's bookkeeping over a fake backend that records every call and can be
// told to run out of memory.
#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <string>

#include "base/caching_allocator.h"
#include "base/error.h"

using namespace eat;

namespace {

struct FakeLog {
  std::map<void*, size_t> live;  // blocks the backend handed out and has not got back
  int allocations = 0, releases = 0, syncs = 0;
  size_t capacity = size_t{1} << 40;  // bytes the fake device holds
  size_t in_use = 0;
};

class FakeBackend final : public AllocatorBackend {
 public:
  explicit FakeBackend(FakeLog& log) : log_(log) {}
  void* allocate(size_t nbytes) override {
    if (log_.in_use + nbytes > log_.capacity) return nullptr;
    void* p = std::malloc(nbytes);
    log_.live[p] = nbytes;
    log_.in_use += nbytes;
    ++log_.allocations;
    return p;
  }
  void release(void* p, size_t nbytes) override {
    REQUIRE(log_.live.count(p) == 1);
    CHECK(log_.live[p] == nbytes);  // given back with the size it was asked for
    log_.live.erase(p);
    log_.in_use -= nbytes;
    ++log_.releases;
    std::free(p);
  }
  void synchronize() override { ++log_.syncs; }
  const char* name() const override { return "fake"; }

 private:
  FakeLog& log_;
};

constexpr size_t MiB = size_t{1} << 20;

}  // namespace

TEST_CASE("size classes: 512-byte steps below 1 MiB, four per power of two above") {
  CHECK(CachingAllocator::round_size(0) == 0);
  CHECK(CachingAllocator::round_size(1) == 512);
  CHECK(CachingAllocator::round_size(512) == 512);
  CHECK(CachingAllocator::round_size(513) == 1024);
  CHECK(CachingAllocator::round_size(MiB - 1) == MiB);
  CHECK(CachingAllocator::round_size(MiB) == MiB);
  CHECK(CachingAllocator::round_size(MiB + 1) == MiB + MiB / 4);
  CHECK(CachingAllocator::round_size(2 * MiB - 1) == 2 * MiB);
  CHECK(CachingAllocator::round_size(2 * MiB + 1) == 2 * MiB + MiB / 2);
  CHECK(CachingAllocator::round_size(100 * MiB) == 112 * MiB);  // 64 MiB steps of 16 MiB
  // Never below the request, never more than 25% above it.
  for (size_t n = 1; n < 300 * MiB; n = n * 3 / 2 + 7) {
    const size_t r = CachingAllocator::round_size(n);
    CHECK(r >= n);
    CHECK(r <= std::max<size_t>(n + 511, n + n / 4));
  }
}

TEST_CASE("a freed block is reused for the next request of its size class without a backend call") {
  FakeLog log;
  CachingAllocator a(std::make_unique<FakeBackend>(log));
  void* p = a.allocate(1000);
  CHECK(log.allocations == 1);
  a.release(p);
  CHECK(log.releases == 0);  // kept in the cache
  void* q = a.allocate(1024);  // same class as 1000
  CHECK(q == p);
  CHECK(log.allocations == 1);
  void* r = a.allocate(2000);  // another class: a fresh block
  CHECK(r != p);
  CHECK(log.allocations == 2);
  CHECK(a.stats().cache_hits == 1);
  CHECK(a.allocate(0) == nullptr);
  a.release(nullptr);  // ignored
  a.release(q);
  a.release(r);
}

TEST_CASE("allocated, reserved and their peaks follow allocations, frees and empty_cache") {
  FakeLog log;
  CachingAllocator a(std::make_unique<FakeBackend>(log));
  void* p = a.allocate(3 * MiB);  // class 3 MiB
  void* q = a.allocate(1000);     // class 1 KiB
  AllocatorStats s = a.stats();
  CHECK(s.allocated == 3 * MiB + 1024);
  CHECK(s.reserved == 3 * MiB + 1024);
  CHECK(s.peak_allocated == 3 * MiB + 1024);
  CHECK(s.backend_allocations == 2);
  a.release(p);
  s = a.stats();
  CHECK(s.allocated == 1024);
  CHECK(s.reserved == 3 * MiB + 1024);  // still held in the cache
  CHECK(s.peak_allocated == 3 * MiB + 1024);
  a.reset_peak();
  CHECK(a.stats().peak_allocated == 1024);
  CHECK(a.stats().peak_reserved == 3 * MiB + 1024);
  a.empty_cache();
  s = a.stats();
  CHECK(log.releases == 1);
  CHECK(log.syncs == 1);  // waited for queued work before giving memory back
  CHECK(s.reserved == 1024);
  CHECK(s.allocated == 1024);
  CHECK(s.backend_releases == 1);
  CHECK(log.in_use == 1024);
  a.release(q);
  a.empty_cache();
  CHECK(a.stats().reserved == 0);
  CHECK(log.live.empty());
}

TEST_CASE("an allocation that does not fit gives the cache back and retries") {
  FakeLog log;
  log.capacity = 10 * MiB;
  CachingAllocator a(std::make_unique<FakeBackend>(log));
  void* p = a.allocate(6 * MiB);
  a.release(p);  // 6 MiB cached
  void* q = a.allocate(7 * MiB);  // 6 + 7 > 10: fits only once the cached block is released
  CHECK(q != nullptr);
  CHECK(log.releases == 1);
  CHECK(a.stats().reserved == 7 * MiB);
  CHECK(a.stats().allocated == 7 * MiB);
  a.release(q);
}

TEST_CASE("out of memory after emptying the cache fails naming the size and the statistics") {
  FakeLog log;
  log.capacity = 10 * MiB;
  CachingAllocator a(std::make_unique<FakeBackend>(log));
  void* held = a.allocate(8 * MiB);
  void* cached = a.allocate(1 * MiB);
  a.release(cached);
  std::string message;
  try {
    a.allocate(5 * MiB);
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK(message.find("fake: out of memory allocating 5242880 bytes") != std::string::npos);
  CHECK(message.find("allocated 8.0 MiB") != std::string::npos);
  CHECK(message.find("reserved 8.0 MiB") != std::string::npos);  // the cached 1 MiB was given back
  CHECK(log.releases == 1);
  CHECK(a.stats().allocated == 8 * MiB);  // the failure changed nothing else
  a.release(held);
}

TEST_CASE("releasing a pointer the allocator did not hand out is an error") {
  FakeLog log;
  CachingAllocator a(std::make_unique<FakeBackend>(log));
  int x = 0;
  CHECK_THROWS_WITH_AS(a.release(&x), doctest::Contains("did not hand out"), Error);
}

TEST_CASE("destroying the allocator gives every cached block back") {
  FakeLog log;
  {
    CachingAllocator a(std::make_unique<FakeBackend>(log));
    a.release(a.allocate(100));
    a.release(a.allocate(5 * MiB));
  }
  CHECK(log.live.empty());
  CHECK(log.releases == 2);
}

TEST_CASE("format_allocator_stats prints MiB and the driver allocation count") {
  AllocatorStats s;
  s.allocated = 3 * MiB / 2;
  s.peak_allocated = 3 * MiB;
  s.reserved = 4 * MiB;
  s.peak_reserved = 4 * MiB;
  s.backend_allocations = 7;
  CHECK(format_allocator_stats(s) ==
        "allocated 1.5 MiB (peak 3.0 MiB), reserved 4.0 MiB (peak 4.0 MiB), 7 driver allocations");
}
