// The Taylor state sum on the GPU (kernels/taylor_state_sum.h). Small next to the attention it
// accompanies (O(T D' e) once per layer), so a plain version: the forward sums each state element
// in one thread over the tokens in order; the backward gives each token one thread, which reads
// its key and value row and the head's state gradient. No atomics: deterministic. Storage f32 or
// bf16; the state, its gradient and every sum are f32.
#include "kernels/cuda/taylor_features.cuh"
#include "kernels/taylor_state_sum.h"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

using namespace taylor_features;

constexpr const char* kOp = "taylor_state_sum (CUDA)";

template <typename D>
__global__ void backward_kernel(HeadShape s, int Dp, Scale c, const D* k, const D* v, const float* dstate, D* dk,
                                D* dv) {
  const int E = static_cast<int>(s.e) + 1, f = static_cast<int>(s.d), e = static_cast<int>(s.e);
  const ValuesWithOnes<D> values{v, e};
  const int64_t n = s.B * s.T * s.H;
  for (int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; row < n;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t h = row % s.H, b = row / (s.T * s.H);
    const float* dS = dstate + (b * s.H + h) * Dp * E;
    float x[kMaxFeature], dx[kMaxFeature];
    load_row(x, k, row, f);
    if (dk) {
      for (int a = 0; a < f; ++a) dx[a] = 0.f;
      add_feature_grad(x, dx, f, Dp, c, [&](int p) {  // dphi_p = dS[p, :] . [v | 1]
        float g = 0.f;
        for (int col = 0; col < E; ++col) g = fmaf(dS[p * E + col], values.at(row, col), g);
        return g;
      });
      for (int a = 0; a < f; ++a) dk[row * f + a] = from_f32<D>(dx[a]);
    }
    if (dv)
      for (int col = 0; col < e; ++col) dv[row * e + col] = from_f32<D>(feature_dot(x, f, Dp, c, dS, E, col));
  }
}

}  // namespace

template <typename T>
void taylor_state_sum_forward(const HeadShape& s, const T* k, const T* v, float* state) {
  check_feature_dim(kOp, s);
  const int Dp = static_cast<int>(taylor_feature_dim(s.d));
  using D = device_t<T>;
  feature_sum_kernel<<<grid_for(s.B * s.H * Dp * (s.e + 1), kRowThreads), kRowThreads, 0, compute_stream()>>>(
      s, Dp, scale_for(s.d), dev(k), ValuesWithOnes<D>{dev(v), static_cast<int>(s.e)}, state);
}

template <typename T>
void taylor_state_sum_backward(const HeadShape& s, const T* k, const T* v, const float* dstate, T* dk, T* dv) {
  check_feature_dim(kOp, s);
  if (!dk && !dv) return;
  const int Dp = static_cast<int>(taylor_feature_dim(s.d));
  backward_kernel<<<grid_for(s.B * s.T * s.H, kRowThreads), kRowThreads, 0, compute_stream()>>>(
      s, Dp, scale_for(s.d), dev(k), dev(v), dstate, dev(dk), dev(dv));
}

EAT_TAYLOR_STATE_SUM_INSTANTIATE(float)
EAT_TAYLOR_STATE_SUM_INSTANTIATE(bf16)

}  // namespace eat::cuda
