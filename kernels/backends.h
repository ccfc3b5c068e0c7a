#pragma once
// Every kernel family's signatures are written once, in its device-neutral header under kernels/,
// and declared for both backends: the CPU kernels (eat::cpu, templates on f32 and f64) and the
// CUDA kernels (eat::cuda, templates on f32 and bf16 storage, queued on cuda::compute_stream()).
// The same call then runs on either device (EAT_KERNEL in framework/dispatch.h):
//   EAT_DECLARE_KERNELS(
//     template <typename T> void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols);
//   )
// Declaring a CUDA kernel in a build without CUDA is harmless: nothing calls it there.
#include <cstdint>

#define EAT_DECLARE_KERNELS(...) \
  namespace cpu {                \
  __VA_ARGS__                    \
  }                              \
  namespace cuda {               \
  __VA_ARGS__                    \
  }

namespace eat {
// Per-row statistics a forward saves for its backward (a norm's inverse RMS, a log-sum-exp): the
// CPU kernels keep them in double, the CUDA kernels reduce in f32.
namespace cpu {
using RowStat = double;
}
namespace cuda {
using RowStat = float;
}
}  // namespace eat
