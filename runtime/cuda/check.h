#pragma once
// Checks CUDA runtime return codes and kernel launches; the error names the file and line.
#include <cuda_runtime.h>

#include "base/error.h"

#define EAT_CUDA_CHECK(expr)                                                                   \
  do {                                                                                         \
    cudaError_t eat_err_ = (expr);                                                             \
    if (eat_err_ != cudaSuccess)                                                               \
      ::eat::fail(__FILE__, ":", __LINE__, ": ", #expr, " failed: ", cudaGetErrorString(eat_err_)); \
  } while (0)

// After a <<<...>>> launch: reports a bad configuration at the launch site, not at a later sync.
#define EAT_CUDA_CHECK_LAUNCH() EAT_CUDA_CHECK(cudaGetLastError())
