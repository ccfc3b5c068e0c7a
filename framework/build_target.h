#pragma once
// The CPU instruction set this binary was compiled for: the native build (the default) targets
// the build machine, -DEAT_NATIVE=OFF the portable x86-64-v3. The trainer prints it beside the
// measured GEMM peak, since that peak (and so MFU) depends on it.
#include <string>

namespace eat {

// "-march=native (cooperlake), AVX-512" or "-march=x86-64-v3, AVX2": the flag CMake passed, the
// CPU it resolved to, and the widest vector extension the compiler was allowed to use.
std::string cpu_build_target();

}  // namespace eat
