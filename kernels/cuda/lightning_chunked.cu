// Lightning Attention-2 on the GPU: the forward and the three gradient passes are sweeps of
// lightning_sweep.cuh. With S the state and G its gradient (kernels/cpu/lightning_chunked.cpp):
//   o  = forward (X, Y, Z) = (q, k, v),   St = S     from S0,      leaving the final state;
//   dq = forward (dO, v, k),              St = S^T   from S0^T;
//   dk = reverse (dO, v, q),              St = G^T   from dfinal^T;
//   dv = reverse (q, k, dO),              St = G     from dfinal,  leaving dS0.
#include "base/dtype.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/lightning_chunked.h"
#include "kernels/cuda/lightning_sweep.cuh"

namespace eat::cuda {

using namespace lightning;

template <typename T>
void lightning_chunked_forward(const HeadShape& s, const double* decay, const T* q, const T* k, const T* v,
                               const T* s0, T* o, T* final_state) {
  const cudaStream_t stream = compute_stream();
  using D = device_t<T>;
  check_dims(s);
  const int d = static_cast<int>(s.d), e = static_cast<int>(s.e);
  run_sweep<D, false>(sweep_args<D>(s, decay, dev(q), dev(k), dev(v), d, e, dev(o), dev(s0), dev(final_state), false),
                      stream);
}

template <typename T>
void lightning_chunked_backward(const HeadShape& s, const double* decay, const T* q, const T* k, const T* v,
                                const T* s0, const T* dout, const T* dfinal, T* dq, T* dk, T* dv, T* ds0) {
  const cudaStream_t stream = compute_stream();
  using D = device_t<T>;
  check_dims(s);
  const int d = static_cast<int>(s.d), e = static_cast<int>(s.e);
  if (dq)
    run_sweep<D, false>(sweep_args<D>(s, decay, dev(dout), dev(v), dev(k), e, d, dev(dq), dev(s0), nullptr, true),
                        stream);
  if (dk)
    run_sweep<D, true>(sweep_args<D>(s, decay, dev(dout), dev(v), dev(q), e, d, dev(dk), dev(dfinal), nullptr, true),
                       stream);
  if (dv || ds0)
    run_sweep<D, true>(sweep_args<D>(s, decay, dev(q), dev(k), dev(dout), d, e, dev(dv), dev(dfinal), dev(ds0), false),
                       stream);
}

#define EAT_INSTANTIATE(T)                                                                                        \
  template void lightning_chunked_forward<T>(const HeadShape&, const double*, const T*, const T*, const T*,  \
                                             const T*, T*, T*);                                    \
  template void lightning_chunked_backward<T>(const HeadShape&, const double*, const T*, const T*, const T*, \
                                              const T*, const T*, const T*, T*, T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(bf16)
#undef EAT_INSTANTIATE

}  // namespace eat::cuda
