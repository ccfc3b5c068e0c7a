#pragma once
// The gates of one chunk of Titans' memory update (titans.md 2.1) and their backward, for the MLP
// memory's CPU kernel. Per token l of a chunk of L tokens, from the logits:
//   log theta_l = log max_lr - softplus(-a_l),  le_l = log eta_l = -softplus(-c_l),
//   lb_l = log(1 - alpha_l) = -softplus(x_l)
// and with every product of gates the exp of a segment sum of logs (each exponent <= 0, so
// nothing overflows; direct segment sums rather than differences of cumulative sums, so a long
// strongly decaying prefix costs no precision):
//   P[i, k] = exp(sum_{k<l<=i} lb_l),  N[k, j] = theta_j exp(sum_{j<l<=k} le_l)   (lower triangles)
//   beta_i = exp(sum_{l<=i} lb_l),  m_i = exp(sum_{l<=i} le_l),  G = P N,  f = P m,
//   g = G[L-1, :],  n = N[L-1, :].
// M_i = beta_i M_0 + f_i S_0 - sum_j G[i, j] u_j, S_{L-1} = m_{L-1} S_0 - sum_j n_j u_j.
#include <Eigen/Dense>
#include <cmath>
#include <cstdint>

namespace eat::cpu::mlp_memory_detail {

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

// The gates of one chunk: its tokens' logits are `stride` elements apart (the heads of a [B, T, H] tensor).
template <typename T>
struct ChunkGates {
  int64_t L;
  Vec<T> log_theta, le, lb, beta, m, f, g, n;
  Mat<T> P, N, G;

  ChunkGates(const T* theta_logit, const T* eta_logit, const T* alpha_logit, int64_t stride, int64_t L_, double max_lr)
      : L(L_), log_theta(L_), le(L_), lb(L_), beta(L_), m(L_) {
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

// The gradients of the gate logits (written `stride` apart) from those of the gates: dG (of
// G = P N, g's folded into its last row), dN_extra (n's, on N's last row), dbeta, df and dm.
template <typename T>
void chunk_gates_backward(const ChunkGates<T>& c, const Mat<T>& dG, const Vec<T>& dn, const Vec<T>& dbeta,
                          const Vec<T>& df, Vec<T> dm, const T* theta_logit, const T* eta_logit, const T* alpha_logit,
                          int64_t stride, T* dtheta_logit, T* deta_logit, T* dalpha_logit) {
  const int64_t L = c.L;
  // G = P N, f = P m (lower triangles).
  Mat<T> dP = lower<T>(dG * c.N.transpose()) + lower<T>(df * c.m.transpose());
  Mat<T> dN = lower<T>(c.P.transpose() * dG);
  dN.row(L - 1) += dn.transpose();
  dm.noalias() += c.P.transpose() * df;
  // X = dP o P, Y = dN o N: the gradient of each entry's exponent. lb_l sits in the exponent of
  // P[i, k] for k < l <= i and of beta_i for i >= l; le_l likewise in N and m; log theta_j in
  // column j of N.
  const Mat<T> X = dP.cwiseProduct(c.P), Y = dN.cwiseProduct(c.N);
  Vec<T> dlb = Vec<T>::Zero(L), dle = Vec<T>::Zero(L);
  {
    // prefix[i] = sum_{k<l} X[i, k] and likewise for Y, advanced with l.
    Vec<T> prefix_x = Vec<T>::Zero(L), prefix_y = Vec<T>::Zero(L);
    // Suffix sums of the beta and m terms, summed from the end.
    Vec<T> tail_beta(L), tail_m(L);
    T sb = 0, sm = 0;
    for (int64_t i = L - 1; i >= 0; --i) {
      tail_beta[i] = sb += dbeta[i] * c.beta[i];
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
    // d log theta / da = sigmoid(-a); d le / dc = sigmoid(-c) = 1 - eta; d lb / dx = -sigmoid(x) = -alpha.
    if (dtheta_logit) dtheta_logit[j * stride] = dlog_theta * sigmoid(-theta_logit[j * stride]);
    if (deta_logit) deta_logit[j * stride] = dle[j] * sigmoid(-eta_logit[j * stride]);
    if (dalpha_logit) dalpha_logit[j * stride] = -dlb[j] * sigmoid(alpha_logit[j * stride]);
  }
}

}  // namespace eat::cpu::mlp_memory_detail
