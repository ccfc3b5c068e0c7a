#pragma once
// Work counts for softmax attention, so benchmarks report the FLOPs a kernel must do (pairs
// outside the causal band or the sliding window are not work, and a kernel that skips them is
// not credited for them).
#include <algorithm>
#include <cstdint>

namespace eat::cpu {

// Number of (query, key) pairs attended over a sequence of T tokens.
inline int64_t attention_pairs(int64_t T, bool causal, int64_t window_left) {
  if (T <= 0) return 0;
  if (!causal) return T * T;
  if (window_left < 0 || window_left >= T - 1) return T * (T + 1) / 2;
  // Queries t < w see t + 1 keys, the remaining T - w queries see w + 1 each.
  const int64_t w = window_left;
  return w * (w + 1) / 2 + (T - w) * (w + 1);
}

// The work of `pairs` (query, key) pairs (over every batch and head). Forward: S = Q K^T (2d per
// pair) and P V (2e per pair). Backward recomputes S (2d), then dV = P^T dO (2e), dP = dO V^T (2e),
// dQ = dS K (2d) and dK = dS^T Q (2d). Softmax and elementwise work is not counted (it is not GEMM
// work and is small next to it for d >= 32).
inline double attention_pair_flops(double pairs, int64_t d, int64_t e, bool include_backward) {
  double flops = pairs * (2.0 * d + 2.0 * e);
  if (include_backward) flops += pairs * 2.0 * (3.0 * d + 2.0 * e);
  return flops;
}

inline double attention_flops(int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, bool causal, int64_t window_left,
                              bool include_backward) {
  return attention_pair_flops(static_cast<double>(B) * H * attention_pairs(T, causal, window_left), d, e, include_backward);
}

}  // namespace eat::cpu
