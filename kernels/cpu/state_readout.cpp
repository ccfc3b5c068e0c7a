#include "kernels/cpu/state_readout.h"
#include "kernels/cpu/parallel.h"

namespace eat::cpu {

using namespace lightning_detail;

namespace {

// lambda^(t+1) for t = 0 .. T-1 as a column, in T.
template <typename T>
Eigen::Matrix<T, Eigen::Dynamic, 1> row_decay(double lambda, int64_t len) {
  std::vector<T> p = decay_powers<T>(lambda, len);
  return Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>(p.data() + 1, len);
}

}  // namespace

template <typename T>
void state_readout_forward(const LinearAttentionShape& s, const std::vector<double>& decay, const T* q, const T* state, T* o) {
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.H * s.d * s.e))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    auto scale = row_decay<T>(decay[static_cast<size_t>(h)], s.T);
    head_rows(o, s, b, h, 0, s.T, s.e).noalias() = scale.asDiagonal() * (head_rows(q, s, b, h, 0, s.T, s.d) * state_of(state, s, bh));
  }
}

template <typename T>
void state_readout_backward(const LinearAttentionShape& s, const std::vector<double>& decay, const T* q, const T* state,
                            const T* dout, T* dq, T* dstate) {
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.H * s.d * s.e))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    auto scale = row_decay<T>(decay[static_cast<size_t>(h)], s.T);
    Mat<T> scaled = scale.asDiagonal() * head_rows(dout, s, b, h, 0, s.T, s.e);  // lambda^(t+1) dO_t
    if (dq) head_rows(dq, s, b, h, 0, s.T, s.d).noalias() = scaled * state_of(state, s, bh).transpose();
    if (dstate) state_of(dstate, s, bh).noalias() = head_rows(q, s, b, h, 0, s.T, s.d).transpose() * scaled;
  }
}

#define EAT_INSTANTIATE(T)                                                                                           \
  template void state_readout_forward<T>(const LinearAttentionShape&, const std::vector<double>&, const T*, const T*, \
                                         T*);                                                                        \
  template void state_readout_backward<T>(const LinearAttentionShape&, const std::vector<double>&, const T*, const T*, \
                                          const T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
