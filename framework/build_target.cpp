#include "framework/build_target.h"

#ifndef EAT_ARCH_NAME
#define EAT_ARCH_NAME "unknown -march"
#endif

namespace eat {

std::string cpu_build_target() {
#if defined(__AVX512F__)
  const char* vectors = "AVX-512";
#elif defined(__AVX2__)
  const char* vectors = "AVX2";
#elif defined(__AVX__)
  const char* vectors = "AVX";
#else
  const char* vectors = "SSE";
#endif
  return std::string(EAT_ARCH_NAME) + ", " + vectors;
}

}  // namespace eat
