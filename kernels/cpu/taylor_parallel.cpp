// Taylor linear attention, the parallel (quadratic) form on the CPU. Per head, with v' = [v | 1],
// P(x) the feature map, tiles of `block` query rows i and key rows j <= i:
//     [N | Z]_i = P(Q_i) S0 + sum_j A(Q_i, K_j) V'_j,        final = S0 + P(K)^T V'
// and backwards, with G = d[N | Z] (kernels/cpu/taylor_common.h, output_grad):
//     dV'_j = sum_{i>=j} A_ij^T G_i + P(K_j) dfinal,   dA = G V'^T, ds = dA o (1 + s) / sqrt(f)
//     dQ_i  = sum_j ds K_j + P'(Q_i)^T (G_i S0^T),     dK_j = sum_i ds^T Q_i + P'(K_j)^T (V'_j dfinal^T)
//     dS0   = dfinal + P(Q)^T G
// Work O(T^2 (f + e) + T D' e) per head; heads run in parallel, each in a fixed order.
#include "kernels/cpu/taylor_common.h"

namespace eat::cpu {

using namespace taylor_detail;

namespace {

// One head's whole q, k and v' = [v | 1] as contiguous matrices.
template <typename T>
struct WholeHead {
  Mat<T> Q, K, V;
  WholeHead(const HeadShape& s, const T* q, const T* k, const T* v, int64_t b, int64_t h)
      : Q(rows_of(q, s, b, h, 0, s.T, s.d)), K(rows_of(k, s, b, h, 0, s.T, s.d)), V(values_with_ones(v, s, b, h, 0, s.T)) {}
};

}  // namespace

template <typename T>
void taylor_parallel_forward(const HeadShape& s, const TaylorKernelArgs& args, const T* q, const T* k, const T* v,
                             const T* s0, T* y, T* final_state, RowStat* denominator) {
  const Head P(s, args);
  const int64_t C = args.block;
  for_each_head(s, s.T * s.T * (s.d + s.e), [&](int64_t b, int64_t h) {
    const int64_t bh = b * s.H + h;
    const auto [Q, K, V] = WholeHead<T>(s, q, k, v, b, h);
    const Mat<T> S0 = state_or_zero(s0, P, bh);
    for (int64_t ti = 0; ti < s.T; ti += C) {
      const int64_t Li = std::min(C, s.T - ti);
      const Mat<T> qi = Q.middleRows(ti, Li);
      Mat<T> out = features(qi) * S0;
      for (int64_t tj = 0; tj < ti + Li; tj += C) {
        const int64_t Lj = std::min(C, s.T - tj);
        out.noalias() += scores<T>(qi, ti, K.middleRows(tj, Lj), tj) * V.middleRows(tj, Lj);
      }
      write_outputs(P, out, b, h, ti, y, denominator);
    }
    store_state<T>(S0 + features<T>(K).transpose() * V, final_state, P, bh);
  });
}

template <typename T>
void taylor_parallel_backward(const HeadShape& s, const TaylorKernelArgs& args, const T* q, const T* k, const T* v,
                              const T* s0, const T* y, const RowStat* denominator, const T* dy, const T* dfinal,
                              T* dq, T* dk, T* dv, T* ds0) {
  const Head P(s, args);
  const int64_t C = args.block;
  for_each_head(s, s.T * s.T * (s.d + s.e), [&](int64_t b, int64_t h) {
    const int64_t bh = b * s.H + h;
    const auto [Q, K, V] = WholeHead<T>(s, q, k, v, b, h);
    const Mat<T> S0 = state_or_zero(s0, P, bh), dF = state_or_zero(dfinal, P, bh);
    const Mat<T> G = output_grad(P, y, denominator, dy, b, h, 0, s.T);
    Mat<T> dQ = Mat<T>::Zero(s.T, s.d), dK = Mat<T>::Zero(s.T, s.d), dV = Mat<T>::Zero(s.T, P.E);
    for (int64_t ti = 0; ti < s.T; ti += C) {
      const int64_t Li = std::min(C, s.T - ti);
      const Mat<T> qi = Q.middleRows(ti, Li), gi = G.middleRows(ti, Li);
      Mat<T> dqi = Mat<T>::Zero(Li, s.d);
      for (int64_t tj = 0; tj < ti + Li; tj += C) {
        const int64_t Lj = std::min(C, s.T - tj);
        Mat<T> dkj = dK.middleRows(tj, Lj), dvj = dV.middleRows(tj, Lj);
        tile_backward<T>(qi, ti, K.middleRows(tj, Lj), tj, V.middleRows(tj, Lj), gi, dq ? &dqi : nullptr,
                         dk ? &dkj : nullptr, dv ? &dvj : nullptr);
        dK.middleRows(tj, Lj) = dkj;
        dV.middleRows(tj, Lj) = dvj;
      }
      if (dq && s0) add_feature_grad<T>(qi, gi * S0.transpose(), dqi);
      dQ.middleRows(ti, Li) = dqi;
    }
    if (dk) add_feature_grad<T>(K, V * dF.transpose(), dK);
    if (dv) dV.noalias() += features<T>(K) * dF;
    write_rows(dQ, dq, s, b, h, 0, s.d);
    write_rows(dK, dk, s, b, h, 0, s.d);
    write_rows(dV, dv, s, b, h, 0, s.e);
    if (ds0) store_state<T>(dF + features<T>(Q).transpose() * G, ds0, P, bh);
  });
}

EAT_TAYLOR_INSTANTIATE(parallel, float)
EAT_TAYLOR_INSTANTIATE(parallel, double)

}  // namespace eat::cpu
