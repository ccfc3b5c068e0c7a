// The state sum is the lightning sweep (lightning_sweep.cuh) with parts of it switched off; the
// sums it runs are exactly those of the lightning kernels, so no new arithmetic is introduced.
//   state = forward (k, k, v),   St = S   from zero, leaving sum_t lambda^(T-1-t) k_t^T v_t: the
//           forward's final state (the sweep needs an X; with no output stored its value is
//           never read back, so k stands in);
//   dv    = reverse (k, k, 0),   St = G   from dstate: with Z = 0 only the state term remains,
//           lambda^(T-1-t) k_t G, and the state just decays;
//   dk    = reverse (v, v, 0),   St = G^T from dstate^T: lambda^(T-1-t) v_t G^T.
// Like the state readout, it does a few times the arithmetic of a dedicated kernel (zero score
// tiles), small next to the attention it accompanies: O(T d e) once per layer.
#include "base/dtype.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/lightning_sweep.cuh"
#include "kernels/state_readout.h"

namespace eat::cuda {

using namespace lightning;

template <typename T>
void state_sum_forward(const HeadShape& s, const double* decay, const T* k, const T* v, T* state) {
  const cudaStream_t stream = compute_stream();
  using D = device_t<T>;
  check_dims(s);
  const int d = static_cast<int>(s.d), e = static_cast<int>(s.e);
  run_sweep<D, false>(sweep_args<D>(s, decay, dev(k), dev(k), dev(v), d, e, nullptr, nullptr, dev(state), false),
                      stream);
}

template <typename T>
void state_sum_backward(const HeadShape& s, const double* decay, const T* k, const T* v, const T* dstate, T* dk,
                        T* dv) {
  const cudaStream_t stream = compute_stream();
  using D = device_t<T>;
  check_dims(s);
  const int d = static_cast<int>(s.d), e = static_cast<int>(s.e);
  if (dk)
    run_sweep<D, true>(sweep_args<D>(s, decay, dev(v), dev(v), nullptr, e, d, dev(dk), dev(dstate), nullptr, true),
                       stream);
  if (dv)
    run_sweep<D, true>(sweep_args<D>(s, decay, dev(k), dev(k), nullptr, d, e, dev(dv), dev(dstate), nullptr, false),
                       stream);
}

#define EAT_INSTANTIATE(T)                                                                                     \
  template void state_sum_forward<T>(const HeadShape&, const double*, const T*, const T*, T*); \
  template void state_sum_backward<T>(const HeadShape&, const double*, const T*, const T*, const T*, T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(bf16)
#undef EAT_INSTANTIATE

}  // namespace eat::cuda
