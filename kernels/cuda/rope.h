#pragma once
// Rotary position embedding on the device (kernels/cpu/rope.h's counterpart), rotate-half
// pairing: for i < d/2, angle = (offset + t) * theta^(-2i/d). Angles in double (the offset can be
// large under sequence parallelism), the rotation itself in f32.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace eat::cuda {

// x, y [B, T, H, d]; inverse = true rotates by the negative angle (the backward). y may not alias x.
template <typename T>
void rope_apply(const T* x, T* y, int64_t B, int64_t T_, int64_t H, int64_t d, double theta, int64_t offset, bool inverse,
                cudaStream_t stream);

}  // namespace eat::cuda
