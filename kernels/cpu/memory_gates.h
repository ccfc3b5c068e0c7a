#pragma once
// The gates of one chunk of Titans' memory ops (linear and MLP memory, titans.md 2.1 and 3.1), from
// the per-token logits: theta = max_lr sigmoid(x_theta), eta = sigmoid(x_eta),
// 1 - alpha = sigmoid(-x_alpha), all kept as logs:
//     log theta_l = log max_lr - softplus(-x_theta),  le_l = log eta_l = -softplus(-x_eta),
//     lb_l = log(1 - alpha_l) = -softplus(x_alpha).
// For tokens i, k, j of a chunk of L tokens (0-based):
//     P[i,k] = exp(sum_{l=k+1..i} lb_l)                      (i >= k)  the decay from token k's momentum to M_i
//     N[k,j] = exp(log theta_j + sum_{l=j+1..k} le_l)        (k >= j)  the weight of u_j in S_k
//     G = P N (the weight of u_j in M_i), beta_i = exp(sum_{l<=i} lb_l), m_i = exp(sum_{l<=i} le_l),
//     f = P m (the weight of S0 in M_i), g = G's last row, n = N's last row (the weights of u_j in
//     the chunk-end state's M and S).
// Every exponent is a segment sum of logs <= 0 (log theta <= log max_lr), summed directly (not a
// difference of prefix sums), so nothing overflows and a long chunk of strong decay underflows to
// 0 harmlessly.
// A memory's chunk backward fills GateGrads (the gradients of G, of n = N's last row beyond its
// part of G, of beta, f and m_L); gate_logit_grads maps them back to the three logits.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace eat::cpu::memory_gates {

template <typename T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;

// The lower triangle of m (diagonal included), zeros above.
template <typename T>
Mat<T> lower(const Mat<T>& m) {
  return m.template triangularView<Eigen::Lower>();
}

// log(1 + exp(x)) without overflow.
template <typename T>
T softplus(T x) {
  return std::max(x, T(0)) + std::log1p(std::exp(-std::abs(x)));
}
// 1 / (1 + exp(-x)) without overflow.
template <typename T>
T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T z = std::exp(x);
  return z / (T(1) + z);
}

// The chunk's gates and their segment products.
template <typename T>
struct ChunkGates {
  int64_t L = 0;
  Vec<T> log_theta, le, lb, beta, m, f, g, n;  // per token
  Mat<T> P, N, G;                              // lower triangular (exact zeros above the diagonal)

  // From the logits of `rows` tokens read at logit[r * stride] (the heads of a [B, T, H] tensor).
  void build(int64_t rows, const T* theta_logit, const T* eta_logit, const T* alpha_logit, int64_t stride,
             double max_lr) {
    L = rows;
    log_theta.resize(L), le.resize(L), lb.resize(L), beta.resize(L), m.resize(L);
    const T log_max_lr = static_cast<T>(std::log(max_lr));
    for (int64_t l = 0; l < L; ++l) {
      log_theta[l] = log_max_lr - softplus(-theta_logit[l * stride]);
      le[l] = -softplus(-eta_logit[l * stride]);
      lb[l] = -softplus(alpha_logit[l * stride]);
    }
    T sb = 0, sm = 0;
    for (int64_t i = 0; i < L; ++i) {
      sb += lb[i];
      sm += le[i];
      beta[i] = std::exp(sb);
      m[i] = std::exp(sm);
    }
    P = Mat<T>::Zero(L, L);
    N = Mat<T>::Zero(L, L);
    for (int64_t k = 0; k < L; ++k) {
      T sp = 0, sn = log_theta[k];
      P(k, k) = T(1);
      N(k, k) = std::exp(sn);
      for (int64_t i = k + 1; i < L; ++i) {
        sp += lb[i];
        sn += le[i];
        P(i, k) = std::exp(sp);
        N(i, k) = std::exp(sn);
      }
    }
    G = lower<T>(P * N);
    f = P * m;
    g = G.row(L - 1).transpose();
    n = N.row(L - 1).transpose();
  }
};

// The gradients a memory's chunk backward leaves for the gates.
template <typename T>
struct GateGrads {
  Mat<T> dG;      // of G (lower triangle read; g's gradient folded into its last row)
  Vec<T> dn;      // of n = N's last row, beyond what reaches N through G
  Vec<T> dbeta;   // of beta
  Vec<T> df;      // of f
  T dm_last = 0;  // of m_L
};

// The logits' gradients (written at out[r * stride]; null: not wanted) from the gates'. Through
// G = P N and f = P m: dP = tril(dG N^T + df m^T), dN = tril(P^T dG) (+ dn on the last row),
// dm = P^T df (+ dm_last). With X = dP o P and Y = dN o N (the gradient of each entry's
// exponent): lb_l sits in the exponent of P[i, k] for k < l <= i and of beta_i for i >= l; le_l
// likewise in N and m; log theta_j in column j of N. Then through the logits:
// d log theta / dx_theta = sigmoid(-x_theta), d le / dx_eta = 1 - eta, d lb / dx_alpha = -alpha.
template <typename T>
void gate_logit_grads(const ChunkGates<T>& c, const GateGrads<T>& gr, const T* theta_logit, const T* eta_logit,
                      const T* alpha_logit, int64_t stride, T* dtheta_logit, T* deta_logit, T* dalpha_logit) {
  const int64_t L = c.L;
  Mat<T> dP = lower<T>(gr.dG * c.N.transpose()) + lower<T>(gr.df * c.m.transpose());
  Mat<T> dN = lower<T>(c.P.transpose() * gr.dG);
  dN.row(L - 1) += gr.dn.transpose();
  Vec<T> dm = Vec<T>::Zero(L);
  dm[L - 1] = gr.dm_last;
  dm.noalias() += c.P.transpose() * gr.df;
  const Mat<T> X = dP.cwiseProduct(c.P), Y = dN.cwiseProduct(c.N);
  Vec<T> dlb = Vec<T>::Zero(L), dle = Vec<T>::Zero(L);
  {
    // prefix[i] = sum_{k<l} X[i, k] and likewise for Y, advanced with l.
    Vec<T> prefix_x = Vec<T>::Zero(L), prefix_y = Vec<T>::Zero(L);
    // Suffix sums of the beta and m terms, summed from the end.
    Vec<T> tail_beta(L), tail_m(L);
    T sb = 0, sm = 0;
    for (int64_t i = L - 1; i >= 0; --i) {
      tail_beta[i] = sb += gr.dbeta[i] * c.beta[i];
      tail_m[i] = sm += dm[i] * c.m[i];
    }
    for (int64_t l = 0; l < L; ++l) {
      if (l > 0)
        for (int64_t i = l; i < L; ++i) {
          prefix_x[i] += X(i, l - 1);
          prefix_y[i] += Y(i, l - 1);
        }
      T sx = tail_beta[l], sy = tail_m[l];
      for (int64_t i = l; i < L; ++i) {
        sx += prefix_x[i];
        sy += prefix_y[i];
      }
      dlb[l] = sx;
      dle[l] = sy;
    }
  }
  for (int64_t j = 0; j < L; ++j) {
    const T dlog_theta = Y.col(j).sum();
    if (dtheta_logit) dtheta_logit[j * stride] = dlog_theta * sigmoid(-theta_logit[j * stride]);
    if (deta_logit) deta_logit[j * stride] = dle[j] * sigmoid(-eta_logit[j * stride]);
    if (dalpha_logit) dalpha_logit[j * stride] = -dlb[j] * sigmoid(alpha_logit[j * stride]);
  }
}

}  // namespace eat::cpu::memory_gates
