#pragma once
// Rotary position embedding, rotate-half pairing: for i < d/2, angle = pos(t) * theta^(-2i/d) with
// pos(t) = (offset + t) / chunk (integer division: chunk 1 rotates by token position, chunk L by the
// index of the L-token chunk the token is in, RAT's chunk-level RoPE),
// (x_i, x_{i+d/2}) -> (x_i cos - x_{i+d/2} sin, x_{i+d/2} cos + x_i sin). Angles in double: the
// offset can be large under sequence parallelism (the device rotates in f32).
#include <cstdint>

#include "kernels/backends.h"

namespace eat {

EAT_DECLARE_KERNELS(
// x, y [B, T, H, d]; inverse = true rotates by the negative angle (the backward). y may be x (in
// place), but may not overlap it otherwise.
template <typename T>
void rope_apply(const T* x, T* y, int64_t B, int64_t T_, int64_t H, int64_t d, double theta, int64_t offset, int64_t chunk,
                bool inverse);
)

}  // namespace eat
