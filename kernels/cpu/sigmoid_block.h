#pragma once
// The logistic sigmoid over short runs of values, vectorised, for the pointwise kernels (SiLU,
// sigmoid, SwiGLU). std::exp in a plain loop stays a scalar libm call (GCC vectorises it only
// under -ffast-math, which the project does not use); Eigen's array exp is a SIMD polynomial
// accurate to about 1 ulp, a few cycles per value instead of a few tens.
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/array_map.h"
#include "kernels/cpu/parallel.h"

namespace eat::cpu {

// Values per block: a block and its temporaries stay in L1.
constexpr int64_t kPointwiseBlock = 1024;

namespace sigmoid_detail {

// The sigmoid into an s aligned to 64 bytes (every vector width's alignment), so Eigen runs every
// whole vector through its vector exp. The values past the last whole vector go through the same
// vector code, from a padded copy: Eigen would give them its scalar exp (std::exp), other bits, so
// a value's sigmoid would depend on where the caller's run of values happens to end.
template <typename T>
inline void sigmoid_aligned(const T* x, T* s, int64_t n) {
  constexpr int64_t packet = Eigen::internal::packet_traits<T>::size;
  const int64_t whole = n / packet * packet;
  ArrayMap<T>(s, whole) = (T(1) + (-ConstArrayMap<T>(x, whole)).exp()).inverse();
  if (whole == n) return;
  using Packet = Eigen::Array<T, packet, 1>;
  Packet tail = Packet::Zero();
  std::copy(x + whole, x + n, tail.data());
  const Packet sig = (T(1) + (-tail).exp()).inverse();
  std::copy(sig.data(), sig.data() + (n - whole), s + whole);
}

}  // namespace sigmoid_detail

// s[0, n) = 1 / (1 + exp(-x[0, n))). Large negative x gives 0 (exp overflows to inf or Eigen's
// clamped maximum), large positive x gives 1. A value's bits depend on the value alone: not on
// where s lies, nor on where the run ends. Eigen runs the elements of s before its first aligned
// one through its scalar exp, so an s that is not 64-byte aligned (a caller's buffer, a row at an
// odd offset) is computed into an aligned block on the stack and copied out.
template <typename T>
inline void sigmoid_block(const T* x, T* s, int64_t n) {
  if (reinterpret_cast<std::uintptr_t>(s) % 64 == 0) {
    sigmoid_detail::sigmoid_aligned(x, s, n);
    return;
  }
  alignas(64) T block[kPointwiseBlock];
  for (int64_t i0 = 0; i0 < n; i0 += kPointwiseBlock) {
    const int64_t len = std::min(kPointwiseBlock, n - i0);
    sigmoid_detail::sigmoid_aligned(x + i0, block, len);
    std::copy(block, block + len, s + i0);
  }
}

// SiLU's derivative at x from s = sigmoid(x): d/dx [x s(x)] = s (1 + x (1 - s)), as an array
// expression over a run (x and s must outlive it).
template <typename X, typename S>
inline auto silu_slope(const Eigen::ArrayBase<X>& x, const Eigen::ArrayBase<S>& s) {
  using T = typename X::Scalar;
  return s * (T(1) + x * (T(1) - s));
}

// Calls f(begin, length) for consecutive blocks of at most kPointwiseBlock values covering
// [0, n), spread over the threads when n is worth it. Each value is computed alone, so the
// split changes no result.
template <typename F>
inline void for_pointwise_blocks(int64_t n, F&& f) {
  const int64_t blocks = (n + kPointwiseBlock - 1) / kPointwiseBlock;
#pragma omp parallel for schedule(static) if(parallel_worth(n))
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kPointwiseBlock;
    f(begin, std::min(kPointwiseBlock, n - begin));
  }
}

}  // namespace eat::cpu
