#pragma once
// The loop shared by the op table's f64 references of Titans' memory ops (linear_memory,
// mlp_memory): the per-token rule (titans.md 1) walked head by head and token by token, each
// token's gates from its logits, and the momentum and forgetting step of one weight. The memory
// itself (its weights, inner gradient and read) is the caller's.
#include <cmath>
#include <cstdint>
#include <vector>

namespace eat::op_cases {

// One token's gates: theta = max_lr sigmoid(x_theta), eta = sigmoid(x_eta), keep = 1 - alpha with
// alpha = sigmoid(x_alpha).
struct TokenGates {
  double theta, eta, keep;
  // One weight w with momentum s, for its inner gradient grad: S = eta S - theta grad, W = keep W + S.
  void step(double grad, double& s, double& w) const {
    s = eta * s - theta * grad;
    w = keep * w + s;
  }
};

inline double sigmoid_f64(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Every head (b, h) of a [B, T, H] token grid in turn: start(b, h), then for each token t in time
// order chunk_start() where a chunk of `chunk` tokens begins (the inner gradients of the chunk
// are taken at the weights there) and token(row, gates) with row = (b T + t) H + h (the index of
// its logits in [B, T, H]), then finish(b, h).
template <typename Start, typename ChunkStart, typename Token, typename Finish>
void per_token_loop(int64_t B, int64_t T, int64_t H, int64_t chunk, double max_lr,
                    const std::vector<double>& theta_logit, const std::vector<double>& eta_logit,
                    const std::vector<double>& alpha_logit, Start start, ChunkStart chunk_start, Token token,
                    Finish finish) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      start(b, h);
      for (int64_t t = 0; t < T; ++t) {
        if (t % chunk == 0) chunk_start();
        const auto row = static_cast<size_t>((b * T + t) * H + h);
        token(row, TokenGates{max_lr * sigmoid_f64(theta_logit[row]), sigmoid_f64(eta_logit[row]),
                              1 - sigmoid_f64(alpha_logit[row])});
      }
      finish(b, h);
    }
}

}  // namespace eat::op_cases
