// The state readout is the lightning sweep with no keys (Y = 0): the scores and the in-chunk state
// updates vanish and only the decayed state term remains, lambda^(t0 + r + 1) X St.
//   o      = forward (q, 0, 0),    St = S   from the state;
//   dq     = forward (dO, 0, 0),   St = S^T from the state;
//   dstate = reverse (q, 0, dO),   St from zero, leaving sum_t lambda^(t+1) q_t^T dO_t.
// It does a few times the arithmetic a dedicated kernel would (the zero score tiles), which is
// small next to the attention it accompanies: it runs once per layer on an O(T d e) product.
// The sweep keeps a head's state in shared memory, up to 128 x 128. Wider states (Titans' MAC
// reads an MLP memory of hidden width h through it: d x h and h x e) take plain kernels below,
// one thread per output element summing in f32 over the contracted axis in a fixed order.
#include "base/dtype.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/lightning_sweep.cuh"
#include "kernels/cuda/scalar.cuh"
#include "kernels/state_readout.h"

namespace eat::cuda {

using namespace lightning;

namespace {

constexpr int kWideThreads = 256;

struct WideShape {
  int64_t B, T, H, d, e;
  double decay[kLightningMaxHeads];
};

WideShape wide_shape(const HeadShape& s, const double* decay) {
  EAT_CHECK(s.H <= kLightningMaxHeads, "state readout (CUDA): ", s.H, " heads, at most ", kLightningMaxHeads,
            " are supported");
  WideShape w{s.B, s.T, s.H, s.d, s.e, {}};
  for (int64_t h = 0; h < s.H; ++h) w.decay[h] = decay[h];
  return w;
}

bool fits_sweep(const HeadShape& s) { return s.d <= kLightningMaxHeadDim && s.e <= kLightningMaxHeadDim; }

unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kWideThreads - 1) / kWideThreads); }

// lambda_h^(t+1): how much of the incoming state reaches token t.
__device__ float reach(const WideShape& w, int64_t h, int64_t t) {
  return static_cast<float>(pow(w.decay[h], static_cast<double>(t + 1)));
}

// out[b, t, h, j] = lambda^(t+1) sum_i x[b, t, h, i] M(i, j), M the head's state [wx, wo]
// (transposed: its transpose, the state being stored [wo, wx]).
template <typename D>
__global__ void wide_rows_times_state(WideShape w, const D* x, int64_t wx, const D* state, bool transposed, D* out,
                                      int64_t wo) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= w.B * w.T * w.H * wo) return;
  const int64_t j = n % wo, h = (n / wo) % w.H, t = (n / (wo * w.H)) % w.T, b = n / (wo * w.H * w.T);
  const D* row = x + ((b * w.T + t) * w.H + h) * wx;
  const D* m = state + (b * w.H + h) * wx * wo;
  float acc = 0;
  for (int64_t i = 0; i < wx; ++i) acc += to_f32(row[i]) * to_f32(transposed ? m[j * wx + i] : m[i * wo + j]);
  out[n] = from_f32<D>(acc * reach(w, h, t));
}

// dstate[b, h, i, j] = sum_t lambda^(t+1) q[b, t, h, i] dO[b, t, h, j].
template <typename D>
__global__ void wide_state_gradient(WideShape w, const D* q, const D* dout, D* dstate) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= w.B * w.H * w.d * w.e) return;
  const int64_t j = n % w.e, i = (n / w.e) % w.d, h = (n / (w.e * w.d)) % w.H, b = n / (w.e * w.d * w.H);
  float acc = 0;
  double power = w.decay[h];  // lambda^(t+1), one multiplication per token (not a pow each)
  for (int64_t t = 0; t < w.T; ++t, power *= w.decay[h]) {
    const int64_t row = (b * w.T + t) * w.H + h;
    acc += static_cast<float>(power) * to_f32(q[row * w.d + i]) * to_f32(dout[row * w.e + j]);
  }
  dstate[n] = from_f32<D>(acc);
}

}  // namespace

template <typename T>
void state_readout_forward(const HeadShape& s, const double* decay, const T* q, const T* state, T* o) {
  const cudaStream_t stream = compute_stream();
  using D = device_t<T>;
  if (!fits_sweep(s)) {
    const WideShape w = wide_shape(s, decay);
    const int64_t n = s.B * s.T * s.H * s.e;
    if (n == 0) return;
    wide_rows_times_state<D><<<blocks_for(n), kWideThreads, 0, stream>>>(w, dev(q), s.d, dev(state), false, dev(o), s.e);
    EAT_CUDA_CHECK_LAUNCH();
    return;
  }
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
  if (!fits_sweep(s)) {
    const WideShape w = wide_shape(s, decay);
    const int64_t n_dq = s.B * s.T * s.H * s.d, n_dstate = s.B * s.H * s.d * s.e;
    if (dq && n_dq > 0) {  // dq = lambda^(t+1) dO S^T
      wide_rows_times_state<D><<<blocks_for(n_dq), kWideThreads, 0, stream>>>(w, dev(dout), s.e, dev(state), true, dev(dq), s.d);
      EAT_CUDA_CHECK_LAUNCH();
    }
    if (dstate && n_dstate > 0) {
      wide_state_gradient<D><<<blocks_for(n_dstate), kWideThreads, 0, stream>>>(w, dev(q), dev(dout), dev(dstate));
      EAT_CUDA_CHECK_LAUNCH();
    }
    return;
  }
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
