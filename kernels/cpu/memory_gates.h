#pragma once
// The gates of one chunk of Titans' memory ops (linear and MLP memory, titans.md 2.1 and 3.1), from
// the per-token logits: theta = max_lr sigmoid(x_theta), eta = sigmoid(x_eta),
// 1 - alpha = sigmoid(-x_alpha). With lb = log(1 - alpha) = -softplus(x_alpha) and
// le = log(eta) = -softplus(-x_eta), for tokens i, k, j of a chunk of L tokens (0-based):
//     P[i,k] = exp(sum_{l=k+1..i} lb_l)            (i >= k)  the decay from token k's momentum to M_i
//     N[k,j] = theta_j exp(sum_{l=j+1..k} le_l)    (k >= j)  the weight of u_j in S_k
//     G = P N (the weight of u_j in M_i), beta_i = exp(sum_{l<=i} lb_l), m_i = exp(sum_{l<=i} le_l),
//     f = P m (the weight of S0 in M_i)
// Every exponent is a segment sum of logs <= 0, summed directly (not a difference of prefix
// sums), so nothing overflows and a long chunk of strong decay underflows to 0 harmlessly.
// A memory's chunk backward fills GateGrads (the gradients of G, of n = N's last row beyond its
// part of G, of beta, f and m_L); gate_logit_grads maps them back to the three logits.
#include <Eigen/Dense>
#include <cmath>
#include <cstdint>

namespace eat::cpu::memory_gates {

template <typename T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;

// log(1 + exp(x)) without overflow.
template <typename T>
T softplus(T x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}
template <typename T>
T sigmoid(T x) {
  return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x));
}

// The chunk's gates and their segment products. Logits are read at logit[r * stride], r < L.
template <typename T>
struct ChunkGates {
  int64_t L = 0;
  Vec<T> theta, lb, le;  // per token: theta, log(1 - alpha), log(eta)
  Mat<T> P, N, G;        // lower triangular (exact zeros above the diagonal)
  Vec<T> beta, m, f;

  void build(int64_t rows, const T* theta_logit, const T* eta_logit, const T* alpha_logit, int64_t stride,
             T max_lr) {
    L = rows;
    theta.resize(L), lb.resize(L), le.resize(L), beta.resize(L), m.resize(L);
    for (int64_t r = 0; r < L; ++r) {
      theta(r) = max_lr * sigmoid(theta_logit[r * stride]);
      lb(r) = -softplus(alpha_logit[r * stride]);
      le(r) = -softplus(-eta_logit[r * stride]);
    }
    P.setZero(L, L);
    N.setZero(L, L);
    for (int64_t c = 0; c < L; ++c) {
      T sum_b = 0, sum_e = 0;
      P(c, c) = 1;
      N(c, c) = theta(c);
      for (int64_t r = c + 1; r < L; ++r) {
        sum_b += lb(r);
        sum_e += le(r);
        P(r, c) = std::exp(sum_b);
        N(r, c) = theta(c) * std::exp(sum_e);
      }
    }
    T sum_b = 0, sum_e = 0;
    for (int64_t r = 0; r < L; ++r) {
      sum_b += lb(r);
      sum_e += le(r);
      beta(r) = std::exp(sum_b);
      m(r) = std::exp(sum_e);
    }
    G.noalias() = P * N;
    f.noalias() = P * m;
  }
  // The weights of u_j in the chunk-end state: W's (g = G's last row) and S's (n = N's last row).
  auto g() const { return G.row(L - 1).transpose(); }
  auto n() const { return N.row(L - 1).transpose(); }
};

// The gradients a memory's chunk backward leaves for the gates.
template <typename T>
struct GateGrads {
  Mat<T> dG;     // of G (lower triangle read)
  Vec<T> dn;     // of n = N's last row, beyond what reaches N through G
  Vec<T> dbeta;  // of beta
  Vec<T> df;     // of f
  T dm_last = 0;  // of m_L

  void reset(int64_t L) {
    dG.setZero(L, L);
    dn.setZero(L);
    dbeta.setZero(L);
    df.setZero(L);
    dm_last = 0;
  }
};

// The logits' gradients (written at out[r * stride]; null: not wanted) from the gates'. Through
// G = P N and f = P m: dP = tril(dG N^T + df m^T), dN = tril(P^T dG) (+ dn on the last row),
// dm = P^T df (+ dm_last). Each P[i,k] = exp(c_i - c_k) with c the prefix sums of lb, so
// dc = dbeta o beta + (strict) rowsum(dP o P) - colsum(dP o P), and dlb is dc's reverse prefix sum;
// likewise for N, m and le; dtheta_j = colsum(dN o N)_j / theta_j. Then through the logits:
// dlb/dx_alpha = -alpha, dle/dx_eta = 1 - eta, dtheta/dx_theta = theta (1 - sigmoid(x_theta)).
template <typename T>
void gate_logit_grads(const ChunkGates<T>& gt, const GateGrads<T>& gr, const T* theta_logit, const T* eta_logit,
                      const T* alpha_logit, int64_t stride, T* dtheta_logit, T* deta_logit, T* dalpha_logit) {
  const int64_t L = gt.L;
  Mat<T> dP = gr.dG.template triangularView<Eigen::Lower>() * gt.N.transpose();
  dP.noalias() += gr.df * gt.m.transpose();
  Mat<T> dN = gt.P.transpose() * gr.dG.template triangularView<Eigen::Lower>();
  dN.row(L - 1) += gr.dn.transpose();
  Vec<T> dm = gt.P.transpose() * gr.df;
  dm(L - 1) += gr.dm_last;
  Vec<T> dcb = gr.dbeta.cwiseProduct(gt.beta), dce = dm.cwiseProduct(gt.m), dtheta = Vec<T>::Zero(L);
  for (int64_t r = 0; r < L; ++r)
    for (int64_t c = 0; c <= r; ++c) {
      const T wp = dP(r, c) * gt.P(r, c), wn = dN(r, c) * gt.N(r, c);
      dtheta(c) += wn;
      if (c == r) continue;
      dcb(r) += wp, dcb(c) -= wp;
      dce(r) += wn, dce(c) -= wn;
    }
  T rev_b = 0, rev_e = 0;
  for (int64_t r = L - 1; r >= 0; --r) {
    rev_b += dcb(r);
    rev_e += dce(r);
    if (dalpha_logit) dalpha_logit[r * stride] = -rev_b * sigmoid(alpha_logit[r * stride]);
    if (deta_logit) deta_logit[r * stride] = rev_e * sigmoid(-eta_logit[r * stride]);
    if (dtheta_logit) dtheta_logit[r * stride] = dtheta(r) * sigmoid(-theta_logit[r * stride]);
  }
}

}  // namespace eat::cpu::memory_gates
