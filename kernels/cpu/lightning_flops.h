#pragma once
// Matmul FLOPs of the chunked decayed linear attention kernel (lightning_chunked.cpp), for
// benchmarks. Counted as the kernel runs on the training path (no initial state, so block 0 has no
// inter-block term; the forward keeps its block states for the backward): per block of L tokens, the causal tile products cover L (L + 1) / 2
// (query, key) pairs and every state product is 2 L d e.
#include <algorithm>
#include <cstdint>

namespace eat::cpu {

inline double lightning_flops(int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, int64_t block,
                              bool include_backward) {
  double flops = 0;
  for (int64_t t0 = 0; t0 < T; t0 += block) {
    const double L = static_cast<double>(std::min(block, T - t0));
    const double pairs = L * (L + 1) / 2;
    const double state = 2 * L * static_cast<double>(d) * static_cast<double>(e);
    const double inter = t0 > 0 ? 1.0 : 0.0;
    // Forward: the block's state update K^T V, scores Q K^T and their product with V, Q S_in.
    flops += state + pairs * 2.0 * static_cast<double>(d + e) + inter * state;
    // Backward (one sweep, with the forward's block states): Q^T dO for the state gradient,
    // scores dO V^T and Q K^T again, dQ = dP K (+ dO S_in^T), dK = dP^T Q + V G^T, dV = A^T dO + K G.
    if (include_backward)
      flops += 3 * state + inter * state + pairs * 2.0 * static_cast<double>(3 * d + 2 * e);
  }
  return flops * static_cast<double>(B) * static_cast<double>(H);
}

}  // namespace eat::cpu
