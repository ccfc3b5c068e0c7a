// The Taylor state sum on the CPU (kernels/taylor_state_sum.h): per head, one product of the
// features of every key with the value rows extended by ones; deterministic (a fixed order per
// head, heads in parallel).
#include "kernels/taylor_state_sum.h"

#include "kernels/cpu/taylor_common.h"

namespace eat::cpu {

using namespace taylor_detail;

template <typename T>
void taylor_state_sum_forward(const HeadShape& s, const T* k, const T* v, T* state) {
  const int64_t D = taylor_feature_dim(s.d), E = s.e + 1;
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * D))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    Eigen::Map<Mat<T>> S(state + bh * D * E, D, E);
    S.noalias() = features<T>(rows_of(k, s, b, h, 0, s.T, s.d)).transpose() * values_with_ones(v, s, b, h, 0, s.T);
  }
}

template <typename T>
void taylor_state_sum_backward(const HeadShape& s, const T* k, const T* v, const T* dstate, T* dk, T* dv) {
  const int64_t D = taylor_feature_dim(s.d), E = s.e + 1;
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * D))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    const Eigen::Map<const Mat<T>> dS(dstate + bh * D * E, D, E);
    const Mat<T> K = rows_of(k, s, b, h, 0, s.T, s.d);
    if (dk) {
      const Mat<T> dphi = values_with_ones(v, s, b, h, 0, s.T) * dS.transpose();  // T x D'
      Mat<T> dK = Mat<T>::Zero(s.T, s.d);
      add_feature_grad(K, dphi, dK);
      head_rows(dk, s, b, h, 0, s.T, s.d) = dK;
    }
    if (dv) head_rows(dv, s, b, h, 0, s.T, s.e).noalias() = features<T>(K) * dS.leftCols(s.e);
  }
}

EAT_TAYLOR_STATE_SUM_INSTANTIATE(float)
EAT_TAYLOR_STATE_SUM_INSTANTIATE(double)

}  // namespace eat::cpu
