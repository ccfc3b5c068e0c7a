#include "kernels/cuda/smem_budget.h"

#include <algorithm>
#include <atomic>

#include "runtime/cuda/check.h"

namespace eat::cuda {

namespace {

std::atomic<int> budget_cap{0};

// Queried once: a process drives one device (see stream.cu).
int smem_optin_limit() {
  static const int limit = [] {
    int device = 0, bytes = 0;
    EAT_CUDA_CHECK(cudaGetDevice(&device));
    EAT_CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    return bytes;
  }();
  return limit;
}

}  // namespace

int smem_budget() {
  const int cap = budget_cap.load();
  return cap > 0 ? std::min(cap, smem_optin_limit()) : smem_optin_limit();
}

void cap_smem_budget(int bytes) { budget_cap.store(std::max(bytes, 0)); }

}  // namespace eat::cuda
