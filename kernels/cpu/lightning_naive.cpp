// The reference decayed linear attention: materialise the decayed causal scores of one
// (batch, head) and multiply. Written for being obviously right, not for speed.
#include "kernels/cpu/lightning_naive.h"
#include "kernels/cpu/parallel.h"

namespace eat::cpu {

using namespace lightning_detail;

namespace {

// (X Y^T) o M on the lower triangle, for X, Y the T rows of one head.
template <typename T, typename X, typename Y>
Mat<T> decayed_scores(const X& x, const Y& y, const std::vector<T>& powers) {
  Mat<T> a(x.rows(), y.rows());
  a.template triangularView<Eigen::Lower>() = x * y.transpose();
  apply_decay_mask(a, powers.data());
  return a;
}

}  // namespace

template <typename T>
void lightning_naive_forward(const HeadShape& s, const double* decay, const T* q, const T* k, const T* v,
                             const T* s0, T* o, T* final_state) {
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * (s.d + s.e)))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    const std::vector<T> pw = decay_powers<T>(decay[h], s.T);  // lambda^0 .. lambda^T
    auto Q = head_rows(q, s, b, h, 0, s.T, s.d);
    auto K = head_rows(k, s, b, h, 0, s.T, s.d);
    auto V = head_rows(v, s, b, h, 0, s.T, s.e);
    auto O = head_rows(o, s, b, h, 0, s.T, s.e);
    Mat<T> A = decayed_scores(Q, K, pw);
    O.noalias() = A.template triangularView<Eigen::Lower>() * V;
    // final = sum_s lambda^(T-1-s) k_s^T v_s + lambda^T S0.
    Mat<T> Kd = K;
    for (int64_t t = 0; t < s.T; ++t) Kd.row(t) *= pw[static_cast<size_t>(s.T - 1 - t)];
    auto F = state_of(final_state, s, bh);
    F.noalias() = Kd.transpose() * V;
    if (s0) {
      auto S0 = state_of(s0, s, bh);
      Mat<T> inter = Q * S0;  // row t is scaled by lambda^(t+1)
      scale_rows(inter, pw.data() + 1);
      O += inter;
      F += pw[static_cast<size_t>(s.T)] * S0;
    }
  }
}

template <typename T>
void lightning_naive_backward(const HeadShape& s, const double* decay, const T* q, const T* k, const T* v,
                              const T* s0, const T* dout, const T* dfinal, T* dq, T* dk, T* dv, T* ds0) {
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * (s.d + s.e)))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    const std::vector<T> pw = decay_powers<T>(decay[h], s.T);
    auto Q = head_rows(q, s, b, h, 0, s.T, s.d);
    auto K = head_rows(k, s, b, h, 0, s.T, s.d);
    auto V = head_rows(v, s, b, h, 0, s.T, s.e);
    auto dO = head_rows(dout, s, b, h, 0, s.T, s.e);
    auto dF = state_of(dfinal, s, bh);
    if (dq || dk) {
      Mat<T> dP = decayed_scores(dO, V, pw);  // d(loss)/d(scores), masked and decayed
      if (dq) {
        auto dQ = head_rows(dq, s, b, h, 0, s.T, s.d);
        dQ.noalias() = dP.template triangularView<Eigen::Lower>() * K;
        if (s0) {
          Mat<T> inter = dO * state_of(s0, s, bh).transpose();
          scale_rows(inter, pw.data() + 1);
          dQ += inter;
        }
      }
      if (dk) {
        auto dK = head_rows(dk, s, b, h, 0, s.T, s.d);
        dK.noalias() = dP.template triangularView<Eigen::Lower>().transpose() * Q;
        Mat<T> from_final = V * dF.transpose();  // k_s enters the final state with lambda^(T-1-s)
        for (int64_t t = 0; t < s.T; ++t) dK.row(t) += pw[static_cast<size_t>(s.T - 1 - t)] * from_final.row(t);
      }
    }
    if (dv) {
      auto dV = head_rows(dv, s, b, h, 0, s.T, s.e);
      Mat<T> A = decayed_scores(Q, K, pw);
      dV.noalias() = A.template triangularView<Eigen::Lower>().transpose() * dO;
      Mat<T> from_final = K * dF;
      for (int64_t t = 0; t < s.T; ++t) dV.row(t) += pw[static_cast<size_t>(s.T - 1 - t)] * from_final.row(t);
    }
    if (ds0) {
      // dS0 = sum_t lambda^(t+1) q_t^T do_t + lambda^T dF.
      Mat<T> Qd = Q;
      scale_rows(Qd, pw.data() + 1);
      auto dS0 = state_of(ds0, s, bh);
      dS0.noalias() = Qd.transpose() * dO;
      dS0 += pw[static_cast<size_t>(s.T)] * dF;
    }
  }
}

#define EAT_INSTANTIATE(T)                                                                                              \
  template void lightning_naive_forward<T>(const HeadShape&, const double*, const T*, const T*, const T*, \
                                           const T*, T*, T*);                                                          \
  template void lightning_naive_backward<T>(const HeadShape&, const double*, const T*, const T*, const T*, \
                                            const T*, const T*, const T*, T*, T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)
#undef EAT_INSTANTIATE

}  // namespace eat::cpu
