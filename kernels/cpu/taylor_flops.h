#pragma once
// Matmul FLOPs of Taylor linear attention's parallel and chunked kernels (taylor_parallel.cpp,
// taylor_chunked.cpp), for benchmarks, counted as they run on the training path (no initial
// state). With E = e + 1 (the value row and its 1 for the normaliser) and D' feature rows:
//  - every causal (query, key) pair: the score q.k (f) and A v' (E) forwards; the score again,
//    dA = g v'^T, dv' = A^T g, dq and dk backwards (3 f + 2 E);
//  - every token's features against a D' x E state: the state update phi(k)^T v' forwards
//    (chunked: also the block's readout phi(q) S); backwards dv' = phi(k) R and dk's v' R^T
//    (chunked: also the readout's dq term G S^T, the state rebuilt, and R's update phi(q)^T G).
// The parallel form's pairs span the whole sequence, the chunked form's only their block.
#include <algorithm>
#include <cstdint>

namespace eat::cpu {

inline double taylor_flops(int64_t B, int64_t T, int64_t H, int64_t f, int64_t e, int64_t block, bool chunked,
                           bool include_backward) {
  const double D = static_cast<double>(1 + f + f * (f + 1) / 2), E = static_cast<double>(e + 1);
  const double pair_fwd = 2.0 * (static_cast<double>(f) + E), pair_bwd = 2.0 * (3.0 * static_cast<double>(f) + 2 * E);
  const double token_state = 2.0 * D * E;  // one token against the state
  double flops = 0;
  if (!chunked) {
    const double t = static_cast<double>(T), pairs = t * (t + 1) / 2;
    flops = pairs * pair_fwd + t * token_state;
    if (include_backward) flops += pairs * pair_bwd + 2 * t * token_state;
  } else {
    for (int64_t t0 = 0; t0 < T; t0 += block) {
      const double L = static_cast<double>(std::min(block, T - t0)), pairs = L * (L + 1) / 2;
      const double readout = t0 > 0 ? 1.0 : 0.0;
      flops += pairs * pair_fwd + (1 + readout) * L * token_state;
      if (include_backward) flops += pairs * pair_bwd + (4 + readout) * L * token_state;
    }
  }
  return flops * static_cast<double>(B) * static_cast<double>(H);
}

}  // namespace eat::cpu
