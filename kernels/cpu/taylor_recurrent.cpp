// Taylor linear attention, token by token on the state (decoding, and the reference the other
// forms are checked against). With P the feature map and v' = [v | 1]:
//     S_t = S_{t-1} + P(k_t)^T v'_t  (S_{-1} = S0, final = S_{T-1}),   [N | Z]_t = P(q_t) S_t
// and backwards, with g_t = d[N | Z]_t and R_t the gradient of S_t (R_{T-1} = dfinal + P(q)^T g
// of the last token, R_{t-1} = R_t + P(q_{t-1})^T g_{t-1}, dS0 = R_0):
//     dq_t = P'(q_t)^T (S_t g_t^T),   dk_t = P'(k_t)^T (R_t v'_t^T),   dv'_t = P(k_t) R_t
// The dq terms need the states forwards and the dk, dv terms the state gradients backwards: two
// sweeps, neither undoing an update (no cancellation). O(T D' e) per head.
#include "kernels/cpu/taylor_common.h"

namespace eat::cpu {

using namespace taylor_detail;

template <typename T>
void taylor_recurrent_forward(const HeadShape& s, const TaylorKernelArgs& args, const T* q, const T* k, const T* v,
                              const T* s0, T* y, T* final_state, RowStat* denominator) {
  const Head P(s, args);
  for_each_head(s, s.T * P.D * P.E, [&](int64_t b, int64_t h) {
    const int64_t bh = b * s.H + h;
    Mat<T> S = state_or_zero(s0, P, bh);
    for (int64_t t = 0; t < s.T; ++t) {
      S.noalias() += features(rows_of(k, s, b, h, t, 1, s.d)).transpose() * values_with_ones(v, s, b, h, t, 1);
      write_outputs<T>(P, features(rows_of(q, s, b, h, t, 1, s.d)) * S, b, h, t, y, denominator);
    }
    store_state(S, final_state, P, bh);
  });
}

template <typename T>
void taylor_recurrent_backward(const HeadShape& s, const TaylorKernelArgs& args, const T* q, const T* k, const T* v,
                               const T* s0, const T* y, const RowStat* denominator, const T* dy, const T* dfinal,
                               T* dq, T* dk, T* dv, T* ds0) {
  const Head P(s, args);
  for_each_head(s, s.T * P.D * P.E, [&](int64_t b, int64_t h) {
    const int64_t bh = b * s.H + h;
    if (dq) {
      Mat<T> S = state_or_zero(s0, P, bh);
      for (int64_t t = 0; t < s.T; ++t) {
        S.noalias() += features(rows_of(k, s, b, h, t, 1, s.d)).transpose() * values_with_ones(v, s, b, h, t, 1);
        const Mat<T> qt = rows_of(q, s, b, h, t, 1, s.d);
        Mat<T> dqt = Mat<T>::Zero(1, s.d);
        add_feature_grad<T>(qt, output_grad(P, y, denominator, dy, b, h, t, 1) * S.transpose(), dqt);
        write_rows(dqt, dq, s, b, h, t, s.d);
      }
    }
    Mat<T> R = state_or_zero(dfinal, P, bh);
    for (int64_t t = s.T - 1; t >= 0; --t) {
      R.noalias() += features(rows_of(q, s, b, h, t, 1, s.d)).transpose() * output_grad(P, y, denominator, dy, b, h, t, 1);
      const Mat<T> kt = rows_of(k, s, b, h, t, 1, s.d);
      if (dk) {
        Mat<T> dkt = Mat<T>::Zero(1, s.d);
        add_feature_grad<T>(kt, values_with_ones(v, s, b, h, t, 1) * R.transpose(), dkt);
        write_rows(dkt, dk, s, b, h, t, s.d);
      }
      if (dv) write_rows<T>(features(kt) * R, dv, s, b, h, t, s.e);
    }
    store_state(R, ds0, P, bh);
  });
}

EAT_TAYLOR_INSTANTIATE(recurrent, float)
EAT_TAYLOR_INSTANTIATE(recurrent, double)

}  // namespace eat::cpu
