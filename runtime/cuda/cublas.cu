#include "runtime/cuda/cublas.h"

#include "runtime/cuda/memory.h"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {
constexpr size_t kWorkspaceBytes = size_t{32} << 20;  // cuBLAS's recommendation for Hopper
}  // namespace

cublasHandle_t cublas_handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t created = nullptr;
    EAT_CUBLAS_CHECK(cublasCreate(&created));
    // cublasSetStream resets the workspace to cuBLAS's own pool, so the workspace comes after it.
    EAT_CUBLAS_CHECK(cublasSetStream(created, compute_stream()));
    EAT_CUBLAS_CHECK(cublasSetWorkspace(created, device_alloc(kWorkspaceBytes), kWorkspaceBytes));
    // Split-K partial sums stay in f32 for bf16 outputs instead of being rounded to bf16.
    EAT_CUBLAS_CHECK(cublasSetMathMode(created, CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION));
    return created;
  }();
  return h;
}

}  // namespace eat::cuda
