#pragma once
// The FLOP formula of each op with matmul-like work, written once: the op table's benchmarks
// (framework/op_cases/) and the models' MFU (train_flops_per_token) both call these. Counted are
// multiply-adds (2 FLOPs each) of the products an op's kernels must do; softmax, decay and other
// elementwise work is not counted. `Pass::forward` is what a model counts per layer (its training
// FLOPs are 3x the forward, the usual MFU convention); `Pass::forward_backward` is the work of
// the forward and backward kernels as they run, recomputation included, which is what a
// benchmark of one op divides its time into.
#include <algorithm>
#include <cstdint>

#include "kernels/cpu/attention_flops.h"
#include "kernels/cpu/lightning_flops.h"
#include "kernels/cpu/taylor_flops.h"

namespace eat::flops {

enum class Pass { forward, forward_backward };

// A product [m, k] x [k, n], `batch` times: the forward's 2 m k n, and the backward's two
// products of the same size (dA and dB).
inline double matmul(int64_t batch, int64_t m, int64_t k, int64_t n, Pass pass) {
  const double forward = 2.0 * static_cast<double>(batch) * static_cast<double>(m) * static_cast<double>(k) *
                         static_cast<double>(n);
  return pass == Pass::forward ? forward : 3 * forward;
}

// A linear map of `rows` rows from `in` to `out` features (the bias is elementwise work).
inline double linear(int64_t rows, int64_t in, int64_t out, Pass pass) { return matmul(1, rows, in, out, pass); }

// Causal (or full) softmax attention, with a sliding window when window_left >= 0; only the
// attended (query, key) pairs are work (kernels/cpu/attention_flops.h).
inline double attention(int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, bool causal, int64_t window_left,
                        Pass pass) {
  return cpu::attention_flops(B, T, H, d, e, causal, window_left, pass == Pass::forward_backward);
}

// Lightning Attention-2's chunked kernel with blocks of `block` tokens (kernels/cpu/lightning_flops.h).
inline double lightning(int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, int64_t block, Pass pass) {
  return cpu::lightning_flops(B, T, H, d, e, block, pass == Pass::forward_backward);
}

// Taylor linear attention (BASED) with f features and value width e: the chunked kernel with
// blocks of `block` tokens, or the parallel (quadratic) one (kernels/cpu/taylor_flops.h).
inline double taylor_chunked(int64_t B, int64_t T, int64_t H, int64_t f, int64_t e, int64_t block, Pass pass) {
  return cpu::taylor_flops(B, T, H, f, e, block, true, pass == Pass::forward_backward);
}
inline double taylor_parallel(int64_t B, int64_t T, int64_t H, int64_t f, int64_t e, Pass pass) {
  return cpu::taylor_flops(B, T, H, f, e, T, false, pass == Pass::forward_backward);
}

// RAT's attention over chunk summaries (summary_attention): query t attends the
// min((query_offset + t) / chunk, C) summaries it sees and its own key, each pair costing what a
// softmax attention pair costs (kernels/cpu/attention_flops.h: 2 (d + e) forward, 2 (3d + 2e)
// more backward).
inline double summary_attention(int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, int64_t C, int64_t chunk,
                                int64_t query_offset, Pass pass) {
  double pairs = 0;
  for (int64_t t = 0; t < T; ++t) pairs += static_cast<double>(std::min((query_offset + t) / chunk, C) + 1);
  return cpu::attention_pair_flops(pairs * static_cast<double>(B) * static_cast<double>(H), d, e,
                                   pass == Pass::forward_backward);
}

// The state readout q_t S (a [d] x [d, e] product per token and head); the backward forms dq = dO
// S^T and dS = q^T dO, the same size each.
inline double state_readout(int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, Pass pass) {
  return matmul(B * H, T, d, e, pass);
}

// The state sum k^T v over T tokens per head; the backward forms dk = v dS^T and dv = k dS.
inline double state_sum(int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, Pass pass) {
  return matmul(B * H, d, T, e, pass);
}

// The causal depthwise convolution of [B, T, C] with k taps: a multiply-add per tap and output;
// the backward forms dx and dw, one each per tap and output.
inline double short_conv(int64_t B, int64_t T, int64_t C, int64_t k, Pass pass) {
  const double forward = 2.0 * static_cast<double>(B) * static_cast<double>(T) * static_cast<double>(C) *
                         static_cast<double>(k);
  return pass == Pass::forward ? forward : 3 * forward;
}

// Titans' linear memory (kernels/linear_memory.h), per head and chunk of L tokens: the forward's
// K W0, Q W0, Q S0 and the two state updates K^T diag(.) E (10 L d e) and its causal L x L products
// Q K^T and A E (L (L + 1) (d + e)); the backward's 26 L d e and L (L + 1) (3 d + 2 e) plus the
// recomputed chunk-start states (6 L d e). The gates' L x L products (G = P N) are not counted.
inline double linear_memory(int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, int64_t chunk, Pass pass) {
  const bool backward = pass == Pass::forward_backward;
  auto per_chunk = [&](double L) {
    const double de = static_cast<double>(d) * static_cast<double>(e), sq = L * (L + 1);
    double work = 10 * L * de + sq * static_cast<double>(d + e);
    if (backward) work += 32 * L * de + sq * static_cast<double>(3 * d + 2 * e);
    return work;
  };
  const int64_t full = T / chunk, rest = T % chunk;
  return static_cast<double>(B) * static_cast<double>(H) *
         (static_cast<double>(full) * per_chunk(static_cast<double>(chunk)) +
          (rest > 0 ? per_chunk(static_cast<double>(rest)) : 0.0));
}

// Titans' MLP memory (kernels/mlp_memory.h) per head and chunk of L tokens: the forward's
// products with the d x h and h x e weights (5 L d h + 6 L h e multiply-adds) and its masked
// L x L scores and their products (L^2 (d + 2 h + e)); the backward recomputes that forward and
// adds 10 L d h + 12 L h e + L^2 (2 d + 4 h + 2 e) (the states recomputed between kept ones, part
// of one more forward, are not counted).
inline double mlp_memory(int64_t B, int64_t T, int64_t H, int64_t d, int64_t h, int64_t e, int64_t chunk, Pass pass) {
  const double dd = static_cast<double>(d), hh = static_cast<double>(h), ee = static_cast<double>(e);
  double forward = 0, backward = 0;
  for (int64_t t0 = 0; t0 < T; t0 += chunk) {
    const double L = static_cast<double>(std::min(chunk, T - t0));
    forward += L * (5 * dd * hh + 6 * hh * ee) + L * L * (dd + 2 * hh + ee);
    backward += L * (10 * dd * hh + 12 * hh * ee) + L * L * (2 * dd + 4 * hh + 2 * ee);
  }
  const double heads = 2.0 * static_cast<double>(B) * static_cast<double>(H);  // 2 FLOPs per multiply-add
  return heads * (pass == Pass::forward ? forward : 2 * forward + backward);
}

}  // namespace eat::flops
