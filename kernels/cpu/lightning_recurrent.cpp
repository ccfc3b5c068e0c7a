// Decayed linear attention as a recurrence over tokens, one (batch, head) per task. The state is
// kept in the input's precision, like the chunked kernel's, so both see the same rounding regime.
#include "kernels/cpu/lightning_recurrent.h"
#include "kernels/cpu/parallel.h"

namespace eat::cpu {

using namespace lightning_detail;

template <typename T>
void lightning_recurrent_forward(const HeadShape& s, const double* decay, const T* q, const T* k, const T* v,
                                 const T* s0, T* o, T* final_state) {
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * s.d * s.e))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    const T lambda = static_cast<T>(decay[h]);
    Mat<T> S = s0 ? Mat<T>(state_of(s0, s, bh)) : Mat<T>::Zero(s.d, s.e);
    for (int64_t t = 0; t < s.T; ++t) {
      S *= lambda;
      S.noalias() += head_rows(k, s, b, h, t, 1, s.d).transpose() * head_rows(v, s, b, h, t, 1, s.e);
      head_rows(o, s, b, h, t, 1, s.e).noalias() = head_rows(q, s, b, h, t, 1, s.d) * S;
    }
    state_of(final_state, s, bh) = S;
  }
}

template <typename T>
void lightning_recurrent_backward(const HeadShape& s, const double* decay, const T* q, const T* k,
                                  const T* v, const T* s0, const T* dout, const T* dfinal, T* dq, T* dk, T* dv, T* ds0) {
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * s.d * s.e))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    const T lambda = static_cast<T>(decay[h]);
    if (dq) {  // dq_t = do_t S_t^T: re-run the forward recurrence (dividing it backwards would be unstable)
      Mat<T> S = s0 ? Mat<T>(state_of(s0, s, bh)) : Mat<T>::Zero(s.d, s.e);
      for (int64_t t = 0; t < s.T; ++t) {
        S *= lambda;
        S.noalias() += head_rows(k, s, b, h, t, 1, s.d).transpose() * head_rows(v, s, b, h, t, 1, s.e);
        head_rows(dq, s, b, h, t, 1, s.d).noalias() = head_rows(dout, s, b, h, t, 1, s.e) * S.transpose();
      }
    }
    if (dk || dv || ds0) {
      // G = d(loss)/d(S_t), walking back from G = dfinal: S_t feeds o_t (G += q_t^T do_t) and
      // S_{t+1} = lambda S_t + ... (G *= lambda when stepping back).
      Mat<T> G = state_of(dfinal, s, bh);
      for (int64_t t = s.T - 1; t >= 0; --t) {
        G.noalias() += head_rows(q, s, b, h, t, 1, s.d).transpose() * head_rows(dout, s, b, h, t, 1, s.e);
        if (dk) head_rows(dk, s, b, h, t, 1, s.d).noalias() = head_rows(v, s, b, h, t, 1, s.e) * G.transpose();
        if (dv) head_rows(dv, s, b, h, t, 1, s.e).noalias() = head_rows(k, s, b, h, t, 1, s.d) * G;
        G *= lambda;
      }
      if (ds0) state_of(ds0, s, bh) = G;  // S_0 = lambda S0 + ...: the last step already applied lambda
    }
  }
}

#define EAT_INSTANTIATE(T)                                                                                          \
  template void lightning_recurrent_forward<T>(const HeadShape&, const double*, const T*, const T*,    \
                                               const T*, const T*, T*, T*);                                       \
  template void lightning_recurrent_backward<T>(const HeadShape&, const double*, const T*, const T*,   \
                                                const T*, const T*, const T*, const T*, T*, T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)
#undef EAT_INSTANTIATE

}  // namespace eat::cpu
