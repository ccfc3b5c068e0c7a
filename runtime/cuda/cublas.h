#pragma once
// The process's cuBLAS handle and the check for cuBLAS return codes.
#include <cublas_v2.h>

#include "runtime/cuda/cublas_check.h"

namespace eat::cuda {

// One handle per process, created on first use, bound to compute_stream(), with its workspace
// from the caching allocator (held for the life of the process, like the handle).
cublasHandle_t cublas_handle();

}  // namespace eat::cuda
