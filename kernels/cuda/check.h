#pragma once
// Checks a CUDA runtime return code and throws an eat::Error naming the call site.
#include <cuda_runtime.h>

#include "framework/error.h"

#define EAT_CUDA_CHECK(expr)                                                                   \
  do {                                                                                         \
    cudaError_t eat_err_ = (expr);                                                             \
    if (eat_err_ != cudaSuccess)                                                               \
      ::eat::fail(__FILE__, ":", __LINE__, ": ", #expr, " failed: ", cudaGetErrorString(eat_err_)); \
  } while (0)
