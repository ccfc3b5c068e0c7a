#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

// Created on first use and never destroyed: destroying streams at exit races the driver's own
// teardown, and the process is ending anyway.
cudaStream_t make_stream() {
  cudaStream_t s = nullptr;
  EAT_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

}  // namespace

cudaStream_t compute_stream() {
  static cudaStream_t s = make_stream();
  return s;
}

cudaStream_t comm_stream() {
  static cudaStream_t s = make_stream();
  return s;
}

void sync_compute() { EAT_CUDA_CHECK(cudaStreamSynchronize(compute_stream())); }

}  // namespace eat::cuda
