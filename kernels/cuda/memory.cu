#include <cstdio>

#include "kernels/cuda/check.h"
#include "kernels/cuda/memory.h"
#include "kernels/cuda/stream.h"

namespace eat::cuda {


int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return n;
}

void* device_alloc(size_t nbytes) {
  void* p = nullptr;
  EAT_CUDA_CHECK(cudaMalloc(&p, nbytes));
  return p;
}

void device_free(void* p) { cudaFree(p); }  // never throws: called from destructors

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

}  // namespace eat::cuda
