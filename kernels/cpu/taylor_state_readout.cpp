// The Taylor state readout on the CPU (kernels/taylor_state_readout.h): per head, one product of
// the query features with the state added to the sums, then the attention kernels' own output
// step (taylor_common.h, write_outputs and output_grad), so the division is theirs exactly.
#include "kernels/taylor_state_readout.h"

#include "kernels/cpu/taylor_common.h"

namespace eat::cpu {

using namespace taylor_detail;

namespace {

// The readout's own arguments: never sums in, y out (write_outputs then normalises).
Head readout_head(const HeadShape& s, const TaylorKernelArgs& a) {
  TaylorKernelArgs args = a;
  args.sums = false;
  return Head(s, args);
}

}  // namespace

template <typename T>
void taylor_state_readout_forward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* state,
                                  const T* sums, T* y, RowStat* denominator) {
  const Head P = readout_head(s, a);
  for_each_head(s, s.T * P.D * P.E, [&](int64_t b, int64_t h) {
    Mat<T> out = head_rows(sums, s, b, h, 0, s.T, P.E);
    out.noalias() += features<T>(rows_of(q, s, b, h, 0, s.T, s.d)) * state_or_zero(state, P, b * s.H + h);
    write_outputs(P, out, b, h, 0, y, denominator);
  });
}

template <typename T>
void taylor_state_readout_backward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* state,
                                   const T* y, const RowStat* denominator, const T* dy, T* dsums, T* dq, T* dstate) {
  const Head P = readout_head(s, a);
  for_each_head(s, s.T * P.D * P.E, [&](int64_t b, int64_t h) {
    const int64_t bh = b * s.H + h;
    const Mat<T> G = output_grad(P, y, denominator, dy, b, h, 0, s.T);
    head_rows(dsums, s, b, h, 0, s.T, P.E) = G;
    const Mat<T> Q = rows_of(q, s, b, h, 0, s.T, s.d);
    if (dq) {
      Mat<T> dQ = Mat<T>::Zero(s.T, s.d);
      add_feature_grad<T>(Q, G * state_or_zero(state, P, bh).transpose(), dQ);
      write_rows(dQ, dq, s, b, h, 0, s.d);
    }
    if (dstate) store_state<T>(features<T>(Q).transpose() * G, dstate, P, bh);
  });
}

EAT_TAYLOR_STATE_READOUT_INSTANTIATE(float)
EAT_TAYLOR_STATE_READOUT_INSTANTIATE(double)

}  // namespace eat::cpu
