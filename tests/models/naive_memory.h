#pragma once
// The Titans memory written out for the model tests (titans.md section 1), one sequence at a
// time, rows are tokens, f64: the memory's inputs from a layer input, and one head's memory
// learned token by token.
#include <algorithm>
#include <cmath>
#include <vector>

#include "models/titans.h"
#include "naive_layers.h"

namespace eat::test {

inline double silu_of(double z) { return z * sigmoid_of(z); }
inline double silu_grad(double z) {
  const double s = sigmoid_of(z);
  return s * (1 + z * (1 - s));
}

// The causal depthwise conv of one sequence u [T, C] with weight [C, k], then SiLU.
inline std::vector<double> conv_silu(const std::vector<double>& u, const Tensor& weight, int64_t T) {
  const int64_t C = weight.size(0), k = weight.size(1);
  const std::vector<double> w = weight.to_f64_vector();
  std::vector<double> y(static_cast<size_t>(T * C));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < C; ++c) {
      double s = 0;
      for (int64_t i = 0; i < k; ++i)
        if (t - k + 1 + i >= 0) s += w[c * k + i] * u[(t - k + 1 + i) * C + c];
      y[t * C + c] = silu_of(s);
    }
  return y;
}

// Each head's d numbers of every row divided by their L2 norm.
inline void l2_normalize_heads(std::vector<double>& x, int64_t d) {
  for (size_t r = 0; r < x.size(); r += static_cast<size_t>(d)) {
    double n = 0;
    for (int64_t i = 0; i < d; ++i) n += x[r + i] * x[r + i];
    n = std::max(std::sqrt(n), 1e-6);
    for (int64_t i = 0; i < d; ++i) x[r + i] /= n;
  }
}

// What a memory layer computes from its input x [T, D] before the memory: q, k, v [T, D] (heads
// side by side) and the gate logits [T, H].
struct NaiveMemoryInputs {
  std::vector<double> q, k, v, theta, eta, alpha;
};
inline NaiveMemoryInputs naive_memory_inputs(const models::NeuralMemory& layer, const std::vector<double>& x, int64_t T) {
  NaiveMemoryInputs in{conv_silu(project(x, layer.q_proj.weight), layer.q_conv.weight, T),
                       conv_silu(project(x, layer.k_proj.weight), layer.k_conv.weight, T),
                       conv_silu(project(x, layer.v_proj.weight), layer.v_conv.weight, T),
                       project(x, layer.theta_proj.weight, layer.theta_bias.to_f64_vector()),
                       project(x, layer.eta_proj.weight, layer.eta_bias.to_f64_vector()),
                       project(x, layer.alpha_proj.weight, layer.alpha_bias.to_f64_vector())};
  l2_normalize_heads(in.q, layer.head_dim);
  l2_normalize_heads(in.k, layer.head_dim);
  return in;
}

// One head's memory: W [d, d] (linear), or W1 [d, hid] and W2 [hid, d] (MLP); momenta alike.
struct NaiveHeadMemory {
  int64_t d = 0, hid = 0;  // hid 0: linear
  std::vector<std::vector<double>> w, s;

  // Head h's share of the layer's learned start; momenta 0.
  static NaiveHeadMemory start(const models::NeuralMemory& layer, int64_t h) {
    NaiveHeadMemory m;
    m.d = layer.head_dim;
    m.hid = layer.kind == models::MemoryKind::mlp ? layer.initial_state[0].size(2) : 0;
    for (const Tensor& init : layer.initial_state) {
      std::vector<double> all = init.to_f64_vector();
      const int64_t n = init.size(1) * init.size(2);
      m.w.emplace_back(all.begin() + h * n, all.begin() + (h + 1) * n);
      m.s.emplace_back(static_cast<size_t>(n), 0.0);
    }
    return m;
  }

  // y += M(q) (d outputs).
  void read(const double* q, double* y) const {
    if (hid == 0) {
      for (int64_t j = 0; j < d; ++j)
        for (int64_t i = 0; i < d; ++i) y[j] += q[i] * w[0][i * d + j];
      return;
    }
    for (int64_t c = 0; c < hid; ++c) {
      double z = 0;
      for (int64_t i = 0; i < d; ++i) z += q[i] * w[0][i * hid + c];
      for (int64_t j = 0; j < d; ++j) y[j] += silu_of(z) * w[1][c * d + j];
    }
  }

  // ||M(k) - v||^2 (the sum over the d outputs).
  double inner_loss(const double* k, const double* v) const {
    std::vector<double> m(static_cast<size_t>(d), 0.0);
    read(k, m.data());
    double l = 0;
    for (int64_t j = 0; j < d; ++j) l += (m[j] - v[j]) * (m[j] - v[j]);
    return l;
  }

  // The gradient of inner_loss with respect to the weights, k and v held fixed.
  std::vector<std::vector<double>> inner_gradient(const double* k, const double* v) const {
    if (hid == 0) {
      // 2 k^T (k W - v).
      std::vector<double> err(static_cast<size_t>(d)), g(static_cast<size_t>(d * d));
      for (int64_t j = 0; j < d; ++j) {
        double m = -v[j];
        for (int64_t i = 0; i < d; ++i) m += k[i] * w[0][i * d + j];
        err[j] = m;
      }
      for (int64_t i = 0; i < d; ++i)
        for (int64_t j = 0; j < d; ++j) g[i * d + j] = 2 * k[i] * err[j];
      return {g};
    }
    // z = k W1, a = silu(z), err = 2 (a W2 - v); u2 = a^T err, u1 = k^T ((err W2^T) silu'(z)).
    std::vector<double> z(static_cast<size_t>(hid)), a(static_cast<size_t>(hid)), err(static_cast<size_t>(d));
    for (int64_t c = 0; c < hid; ++c) {
      for (int64_t i = 0; i < d; ++i) z[c] += k[i] * w[0][i * hid + c];
      a[c] = silu_of(z[c]);
    }
    for (int64_t j = 0; j < d; ++j) {
      double m = -v[j];
      for (int64_t c = 0; c < hid; ++c) m += a[c] * w[1][c * d + j];
      err[j] = 2 * m;
    }
    std::vector<double> g1(static_cast<size_t>(d * hid)), g2(static_cast<size_t>(hid * d));
    for (int64_t c = 0; c < hid; ++c) {
      double back = 0;
      for (int64_t j = 0; j < d; ++j) back += err[j] * w[1][c * d + j];
      for (int64_t i = 0; i < d; ++i) g1[i * hid + c] = k[i] * back * silu_grad(z[c]);
      for (int64_t j = 0; j < d; ++j) g2[c * d + j] = a[c] * err[j];
    }
    return {g1, g2};
  }

  // S = eta S - theta u, then W = (1 - alpha) W + S, with the gates from their logits.
  void update(const std::vector<std::vector<double>>& u, double max_lr, double theta_logit, double eta_logit,
              double alpha_logit) {
    const double th = max_lr * sigmoid_of(theta_logit), et = sigmoid_of(eta_logit), al = sigmoid_of(alpha_logit);
    for (size_t p = 0; p < w.size(); ++p)
      for (size_t i = 0; i < w[p].size(); ++i) {
        s[p][i] = et * s[p][i] - th * u[p][i];
        w[p][i] = (1 - al) * w[p][i] + s[p][i];
      }
  }
};

// x * weight / rms(x) over each row of `width` numbers.
inline void rms_norm_rows(std::vector<double>& x, const Tensor& weight, double eps) {
  const std::vector<double> w = weight.to_f64_vector();
  const int64_t width = weight.size(0);
  for (size_t r = 0; r < x.size(); r += static_cast<size_t>(width)) {
    double ss = 0;
    for (int64_t i = 0; i < width; ++i) ss += x[r + i] * x[r + i];
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(width) + eps);
    for (int64_t i = 0; i < width; ++i) x[r + i] *= inv * w[i];
  }
}

}  // namespace eat::test
