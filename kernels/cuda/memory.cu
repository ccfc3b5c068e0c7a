#include "kernels/cuda/check.h"
#include "kernels/cuda/memory.h"

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
  cudaMemcpyKind kind = dst_on_device ? (src_on_device ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                                      : (src_on_device ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  EAT_CUDA_CHECK(cudaMemcpy(dst, src, nbytes, kind));
}

void zero(void* dst, size_t nbytes) { EAT_CUDA_CHECK(cudaMemset(dst, 0, nbytes)); }

void synchronize() { EAT_CUDA_CHECK(cudaDeviceSynchronize()); }

}  // namespace eat::cuda
