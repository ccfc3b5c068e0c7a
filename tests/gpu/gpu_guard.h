#pragma once
// GPU tests exit with code 77 (ctest's SKIP_RETURN_CODE for the gpu label) when no CUDA device is
// present, so ctest lists them as skipped instead of passing silently.
#include <cstdio>
#include <cstdlib>

#include "framework/storage.h"

namespace eat::test {

inline void require_gpu() {
  if (!cuda_available()) {
    std::printf("no CUDA device: GPU test skipped\n");
    std::fflush(stdout);
    std::_Exit(77);
  }
}

}  // namespace eat::test
