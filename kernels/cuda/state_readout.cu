// The state readout is the lightning sweep with no keys (Y = 0): the scores and the in-chunk state
// updates vanish and only the decayed state term remains, lambda^(t0 + r + 1) X St.
//   o      = forward (q, 0, 0),    St = S   from the state;
//   dq     = forward (dO, 0, 0),   St = S^T from the state;
//   dstate = reverse (q, 0, dO),   St from zero, leaving sum_t lambda^(t+1) q_t^T dO_t.
// It does a few times the arithmetic a dedicated kernel would (the zero score tiles), which is
// small next to the attention it accompanies: it runs once per layer on an O(T d e) product.
#include "base/dtype.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/lightning_sweep.cuh"
#include "kernels/state_readout.h"

namespace eat::cuda {

using namespace lightning;

template <typename T>
void state_readout_forward(const HeadShape& s, const double* decay, const T* q, const T* state, T* o) {
  const cudaStream_t stream = compute_stream();
  using D = device_t<T>;
  check_dims(s);
  const int d = static_cast<int>(s.d), e = static_cast<int>(s.e);
  run_sweep<D, false>(sweep_args<D>(s, decay, dev(q), nullptr, nullptr, d, e, dev(o), dev(state), nullptr, false),
                      stream);
}

template <typename T>
void state_readout_backward(const HeadShape& s, const double* decay, const T* q, const T* state, const T* dout,
                            T* dq, T* dstate) {
  const cudaStream_t stream = compute_stream();
  using D = device_t<T>;
  check_dims(s);
  const int d = static_cast<int>(s.d), e = static_cast<int>(s.e);
  if (dq)
    run_sweep<D, false>(sweep_args<D>(s, decay, dev(dout), nullptr, nullptr, e, d, dev(dq), dev(state), nullptr, true),
                        stream);
  if (dstate)
    run_sweep<D, true>(sweep_args<D>(s, decay, dev(q), nullptr, dev(dout), d, e, nullptr, nullptr, dev(dstate), false),
                       stream);
}

#define EAT_INSTANTIATE(T)                                                                                          \
  template void state_readout_forward<T>(const HeadShape&, const double*, const T*, const T*, T*); \
  template void state_readout_backward<T>(const HeadShape&, const double*, const T*, const T*, const T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(bf16)
#undef EAT_INSTANTIATE

}  // namespace eat::cuda
