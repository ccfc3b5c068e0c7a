// Taylor linear attention, the chunked form on the CPU. With S(j) the state [S | z] entering
// block j (S(0) = S0), P the feature map and v' = [v | 1]:
//     [N | Z]_j = P(Q_j) S(j) + A(Q_j, K_j) V'_j          (A causal within the block)
//     S(j + 1)  = S(j) + P(K_j)^T V'_j                    (the last one is the final state)
// and backwards, with G_j = d[N | Z]_j and R(j) the gradient of the state at block j's end
// (R(last) = dfinal, R(j - 1) = R(j) + P(Q_j)^T G_j, dS0 = R(-1)):
//     dQ_j  = intra + P'(Q_j)^T (G_j S(j)^T)
//     dK_j  = intra + P'(K_j)^T (V'_j R(j)^T),   dV'_j = intra + P(K_j) R(j)
// where intra is the quadratic block's backward (taylor_common.h, tile_backward). The dQ terms
// need the states forwards and the dK, dV terms the state gradients backwards: two sweeps.
// Work O(T C (f + e) + T D' e) per head; heads run in parallel, each in a fixed order.
#include "kernels/cpu/taylor_common.h"

namespace eat::cpu {

using namespace taylor_detail;

template <typename T>
void taylor_chunked_forward(const HeadShape& s, const TaylorKernelArgs& args, const T* q, const T* k, const T* v,
                            const T* s0, T* y, T* final_state, RowStat* denominator) {
  const Head P(s, args);
  const int64_t C = args.block;
  for_each_head(s, s.T * (C + P.D) * (s.d + s.e), [&](int64_t b, int64_t h) {
    const int64_t bh = b * s.H + h;
    Mat<T> S = state_or_zero(s0, P, bh);
    for (int64_t t0 = 0; t0 < s.T; t0 += C) {
      const int64_t L = std::min(C, s.T - t0);
      const Mat<T> qb = rows_of(q, s, b, h, t0, L, s.d), kb = rows_of(k, s, b, h, t0, L, s.d);
      const Mat<T> vb = values_with_ones(v, s, b, h, t0, L);
      Mat<T> out = features(qb) * S;
      out.noalias() += scores(qb, t0, kb, t0) * vb;
      write_outputs(P, out, b, h, t0, y, denominator);
      S.noalias() += features(kb).transpose() * vb;
    }
    store_state(S, final_state, P, bh);
  });
}

template <typename T>
void taylor_chunked_backward(const HeadShape& s, const TaylorKernelArgs& args, const T* q, const T* k, const T* v,
                             const T* s0, const T* y, const RowStat* denominator, const T* dy, const T* dfinal,
                             T* dq, T* dk, T* dv, T* ds0) {
  const Head P(s, args);
  const int64_t C = args.block;
  for_each_head(s, s.T * (C + P.D) * (s.d + s.e), [&](int64_t b, int64_t h) {
    const int64_t bh = b * s.H + h;
    Mat<T> dK = Mat<T>::Zero(s.T, s.d), dV = Mat<T>::Zero(s.T, P.E);
    // Forwards: the block's own quadratic backward, and dQ's term from the state entering it.
    Mat<T> S = state_or_zero(s0, P, bh);
    for (int64_t t0 = 0; t0 < s.T; t0 += C) {
      const int64_t L = std::min(C, s.T - t0);
      const Mat<T> qb = rows_of(q, s, b, h, t0, L, s.d), kb = rows_of(k, s, b, h, t0, L, s.d);
      const Mat<T> vb = values_with_ones(v, s, b, h, t0, L);
      const Mat<T> G = output_grad(P, y, denominator, dy, b, h, t0, L);
      Mat<T> dqb = Mat<T>::Zero(L, s.d), dkb = Mat<T>::Zero(L, s.d), dvb = Mat<T>::Zero(L, P.E);
      tile_backward<T>(qb, t0, kb, t0, vb, G, dq ? &dqb : nullptr, dk ? &dkb : nullptr, dv ? &dvb : nullptr);
      if (dq) {
        add_feature_grad<T>(qb, G * S.transpose(), dqb);
        write_rows(dqb, dq, s, b, h, t0, s.d);
      }
      dK.middleRows(t0, L) = dkb;
      dV.middleRows(t0, L) = dvb;
      if (dq && t0 + L < s.T) S.noalias() += features(kb).transpose() * vb;
    }
    // Backwards: the state gradient R, and the dK, dV terms of the tokens entering it.
    Mat<T> R = state_or_zero(dfinal, P, bh);
    for (int64_t t0 = (s.T - 1) / C * C; t0 >= 0; t0 -= C) {
      const int64_t L = std::min(C, s.T - t0);
      const Mat<T> qb = rows_of(q, s, b, h, t0, L, s.d), kb = rows_of(k, s, b, h, t0, L, s.d);
      const Mat<T> vb = values_with_ones(v, s, b, h, t0, L);
      if (dk) {
        Mat<T> dkb = dK.middleRows(t0, L);
        add_feature_grad<T>(kb, vb * R.transpose(), dkb);
        write_rows(dkb, dk, s, b, h, t0, s.d);
      }
      if (dv) write_rows<T>(dV.middleRows(t0, L) + features(kb) * R, dv, s, b, h, t0, s.e);
      if (t0 > 0 || ds0) R.noalias() += features(qb).transpose() * output_grad(P, y, denominator, dy, b, h, t0, L);
    }
    store_state(R, ds0, P, bh);
  });
}

#define EAT_TAYLOR_CHUNKED(T)                                                                                      \
  template void taylor_chunked_forward<T>(const HeadShape&, const TaylorKernelArgs&, const T*, const T*, const T*, \
                                          const T*, T*, T*, RowStat*);                                             \
  template void taylor_chunked_backward<T>(const HeadShape&, const TaylorKernelArgs&, const T*, const T*,         \
                                           const T*, const T*, const T*, const RowStat*, const T*, const T*, T*,  \
                                           T*, T*, T*);
EAT_TAYLOR_CHUNKED(float)
EAT_TAYLOR_CHUNKED(double)

}  // namespace eat::cpu
