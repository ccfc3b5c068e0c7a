#pragma once
// RoPE (kernels/rope.h) over a range of token rows, for a kernel that rotates rows as it makes
// them: the packed GEMM hands a q or k projection's rows over as it finishes them
// (framework/ops/joins.cpp), and they are rotated there, in cache, instead of in a pass of their own.
#include <cstdint>
#include <vector>

namespace eat::cpu {

// cos and sin of every angle of T_ positions and d/2 frequencies, [T_, d/2] each.
template <typename T>
struct RopeAngles {
  int64_t T_ = -1, d = -1, offset = 0, chunk = 0;
  double theta = 0;
  std::vector<T> cos, sin;
};

// The calling thread's table for these positions: built on first use and kept until the thread
// asks for others (the q and k of every layer, forward and backward, share one).
template <typename T>
const RopeAngles<T>& rope_angles(int64_t T_, int64_t d, double theta, int64_t offset, int64_t chunk);

// Token rows [row0, row0 + rows) of x [B * T_, H, d] rotated into the same rows of y (y may be x),
// row r at sequence position r % T_; inverse rotates back. On the calling thread alone.
template <typename T>
void rope_rows(const RopeAngles<T>& angles, const T* x, T* y, int64_t row0, int64_t rows, int64_t H, bool inverse);

}  // namespace eat::cpu
