#pragma once
// FLOP counts of softmax attention for benchmarks and MFU: only (query, key) pairs the mask
// lets through count.
#include <algorithm>
#include <cstdint>

namespace eat::cpu {

// Pairs attended in one head: all T^2 without the causal mask; with it, query t sees
// min(t + 1, window + 1) keys (window < 0: no window).
inline double attention_pairs(int64_t T, bool causal, int64_t window_left) {
  if (!causal) return static_cast<double>(T) * static_cast<double>(T);
  double pairs = 0;
  for (int64_t t = 0; t < T; ++t) pairs += static_cast<double>(window_left >= 0 ? std::min(t + 1, window_left + 1) : t + 1);
  return pairs;
}

// Forward: S = Q K^T (2d per pair) and O = P V (2e per pair). Backward: recompute S, dV = P^T dO,
// dP = dO V^T, dQ = dS K, dK = dS^T Q: 2 (3d + 2e) per pair.
inline double attention_flops(int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, bool causal, int64_t window_left,
                              bool include_backward) {
  const double pairs = static_cast<double>(B) * static_cast<double>(H) * attention_pairs(T, causal, window_left);
  double flops = pairs * (2.0 * d + 2.0 * e);
  if (include_backward) flops += pairs * 2.0 * (3.0 * d + 2.0 * e);
  return flops;
}

}  // namespace eat::cpu
