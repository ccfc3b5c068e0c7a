#include "kernels/state_readout.h"
#include "kernels/cpu/lightning_common.h"
#include "kernels/cpu/parallel.h"

namespace eat::cpu {

using namespace lightning_detail;

// Every kernel here scales whole rows of one head by powers of its decay: lambda^(t+1) for the
// readout (how much of the incoming state reaches token t), lambda^(T-1-t) for the sum (how much
// of token t survives to the end). The table of powers is built once per call, per head.

template <typename T>
void state_readout_forward(const HeadShape& s, const double* decay, const T* q, const T* state, T* o) {
  const std::vector<T> powers = decay_power_table<T>(decay, s.H, s.T);
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * s.d))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    auto O = head_rows(o, s, b, h, 0, s.T, s.e);
    O.noalias() = head_rows(q, s, b, h, 0, s.T, s.d) * state_of(state, s, bh);
    scale_rows(O, powers.data() + h * (s.T + 1) + 1);
  }
}

template <typename T>
void state_readout_backward(const HeadShape& s, const double* decay, const T* q, const T* state,
                            const T* dout, T* dq, T* dstate) {
  const std::vector<T> powers = decay_power_table<T>(decay, s.H, s.T);
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * s.d))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    Mat<T> scaled = head_rows(dout, s, b, h, 0, s.T, s.e);  // lambda^(t+1) dO_t
    scale_rows(scaled, powers.data() + h * (s.T + 1) + 1);
    if (dq) head_rows(dq, s, b, h, 0, s.T, s.d).noalias() = scaled * state_of(state, s, bh).transpose();
    if (dstate) state_of(dstate, s, bh).noalias() = head_rows(q, s, b, h, 0, s.T, s.d).transpose() * scaled;
  }
}

template <typename T>
void state_sum_forward(const HeadShape& s, const double* decay, const T* k, const T* v, T* state) {
  const std::vector<T> powers = decay_power_table<T>(decay, s.H, s.T);
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * s.d))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    Mat<T> scaled = head_rows(v, s, b, h, 0, s.T, s.e);
    scale_rows_to_end(scaled, powers.data() + h * (s.T + 1));
    state_of(state, s, bh).noalias() = head_rows(k, s, b, h, 0, s.T, s.d).transpose() * scaled;
  }
}

template <typename T>
void state_sum_backward(const HeadShape& s, const double* decay, const T* k, const T* v,
                        const T* dstate, T* dk, T* dv) {
  const std::vector<T> powers = decay_power_table<T>(decay, s.H, s.T);
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * s.d))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    const T* to_end = powers.data() + h * (s.T + 1);
    if (dk) {
      auto dK = head_rows(dk, s, b, h, 0, s.T, s.d);
      dK.noalias() = head_rows(v, s, b, h, 0, s.T, s.e) * state_of(dstate, s, bh).transpose();
      scale_rows_to_end(dK, to_end);
    }
    if (dv) {
      auto dV = head_rows(dv, s, b, h, 0, s.T, s.e);
      dV.noalias() = head_rows(k, s, b, h, 0, s.T, s.d) * state_of(dstate, s, bh);
      scale_rows_to_end(dV, to_end);
    }
  }
}

#define EAT_INSTANTIATE(T)                                                                                           \
  template void state_readout_forward<T>(const HeadShape&, const double*, const T*, const T*, \
                                         T*);                                                                        \
  template void state_readout_backward<T>(const HeadShape&, const double*, const T*, const T*, \
                                          const T*, T*, T*);                                     \
  template void state_sum_forward<T>(const HeadShape&, const double*, const T*, const T*, T*); \
  template void state_sum_backward<T>(const HeadShape&, const double*, const T*, const T*,      \
                                      const T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
