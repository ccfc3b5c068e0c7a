#include <cstdio>

#include "base/caching_allocator.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/memory.h"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

class CudaBackend final : public AllocatorBackend {
 public:
  void* allocate(size_t nbytes) override {
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, nbytes);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // not sticky, but would otherwise surface at the next launch check
      return nullptr;
    }
    EAT_CUDA_CHECK(err);
    return p;
  }
  void release(void* p, size_t) override { EAT_CUDA_CHECK(cudaFree(p)); }
  void synchronize() override { sync_compute(); }
  const char* name() const override { return "cuda"; }
};

// Never destroyed: tensors may be freed during static destruction, after the driver is gone.
CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator(std::make_unique<CudaBackend>());
  return *a;
}

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

void* device_alloc(size_t nbytes) { return allocator().allocate(nbytes); }

void device_free(void* p) {
  try {
    allocator().release(p);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eat: %s\n", e.what());
  }
}

void copy(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t nbytes) {
  if (nbytes == 0) return;
  cudaMemcpyKind kind = dst_on_device ? (src_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                      : (src_on_device ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  // The legacy default stream would not be ordered with compute_stream (a non-blocking stream).
  EAT_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, kind, compute_stream()));
  if (!dst_on_device) sync_compute();
}

void zero(void* dst, size_t nbytes) {
  if (nbytes == 0) return;
  EAT_CUDA_CHECK(cudaMemsetAsync(dst, 0, nbytes, compute_stream()));
}

void synchronize() { EAT_CUDA_CHECK(cudaDeviceSynchronize()); }

size_t available_bytes() {
  size_t free_bytes = 0, total_bytes = 0;
  EAT_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  const AllocatorStats s = allocator().stats();
  return free_bytes + (s.reserved - s.allocated);
}

AllocatorStats memory_stats() { return allocator().stats(); }
void empty_cache() { allocator().empty_cache(); }

}  // namespace eat::cuda
