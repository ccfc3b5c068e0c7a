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

// lambda^(T-1-t) for t = 0 .. T-1 as a column, in T: how much of token t survives to the end.
template <typename T>
Eigen::Matrix<T, Eigen::Dynamic, 1> to_end_decay(double lambda, int64_t len) {
  std::vector<T> p = decay_powers<T>(lambda, len);
  Eigen::Matrix<T, Eigen::Dynamic, 1> out(len);
  for (int64_t t = 0; t < len; ++t) out(t) = p[static_cast<size_t>(len - 1 - t)];
  return out;
}

}  // namespace

template <typename T>
void state_readout_forward(const LinearAttentionShape& s, const std::vector<double>& decay, const T* q, const T* state, T* o) {
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * s.d))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    auto scale = row_decay<T>(decay[static_cast<size_t>(h)], s.T);
    head_rows(o, s, b, h, 0, s.T, s.e).noalias() = scale.asDiagonal() * (head_rows(q, s, b, h, 0, s.T, s.d) * state_of(state, s, bh));
  }
}

template <typename T>
void state_readout_backward(const LinearAttentionShape& s, const std::vector<double>& decay, const T* q, const T* state,
                            const T* dout, T* dq, T* dstate) {
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * s.d))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    auto scale = row_decay<T>(decay[static_cast<size_t>(h)], s.T);
    Mat<T> scaled = scale.asDiagonal() * head_rows(dout, s, b, h, 0, s.T, s.e);  // lambda^(t+1) dO_t
    if (dq) head_rows(dq, s, b, h, 0, s.T, s.d).noalias() = scaled * state_of(state, s, bh).transpose();
    if (dstate) state_of(dstate, s, bh).noalias() = head_rows(q, s, b, h, 0, s.T, s.d).transpose() * scaled;
  }
}

template <typename T>
void state_sum_forward(const LinearAttentionShape& s, const std::vector<double>& decay, const T* k, const T* v, T* state) {
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * s.d))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    auto scale = to_end_decay<T>(decay[static_cast<size_t>(h)], s.T);
    Mat<T> scaled = scale.asDiagonal() * head_rows(v, s, b, h, 0, s.T, s.e);
    state_of(state, s, bh).noalias() = head_rows(k, s, b, h, 0, s.T, s.d).transpose() * scaled;
  }
}

template <typename T>
void state_sum_backward(const LinearAttentionShape& s, const std::vector<double>& decay, const T* k, const T* v,
                        const T* dstate, T* dk, T* dv) {
#pragma omp parallel for schedule(static) if(parallel_worth(s.B * s.T * s.H * s.d))
  for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
    const int64_t b = bh / s.H, h = bh % s.H;
    auto scale = to_end_decay<T>(decay[static_cast<size_t>(h)], s.T);
    if (dk) head_rows(dk, s, b, h, 0, s.T, s.d).noalias() =
                scale.asDiagonal() * (head_rows(v, s, b, h, 0, s.T, s.e) * state_of(dstate, s, bh).transpose());
    if (dv) head_rows(dv, s, b, h, 0, s.T, s.e).noalias() =
                scale.asDiagonal() * (head_rows(k, s, b, h, 0, s.T, s.d) * state_of(dstate, s, bh));
  }
}

#define EAT_INSTANTIATE(T)                                                                                           \
  template void state_readout_forward<T>(const LinearAttentionShape&, const std::vector<double>&, const T*, const T*, \
                                         T*);                                                                        \
  template void state_readout_backward<T>(const LinearAttentionShape&, const std::vector<double>&, const T*, const T*, \
                                          const T*, T*, T*);                                     \
  template void state_sum_forward<T>(const LinearAttentionShape&, const std::vector<double>&, const T*, const T*, T*); \
  template void state_sum_backward<T>(const LinearAttentionShape&, const std::vector<double>&, const T*, const T*,      \
                                      const T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
