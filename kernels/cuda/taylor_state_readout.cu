// The Taylor state readout on the GPU (kernels/taylor_state_readout.h). O(T D' e) once per layer,
// next to the attention's O(T (C + D') e): plain kernels, one thread per token row for the output
// and for G and dq, one thread per state element (in token order) for the state gradient. No
// atomics: deterministic. Storage f32 or bf16; the state, the sums, their gradients, the
// denominators and every sum are f32; the division is the chunked kernel's (Z + eps in f32).
#include "kernels/cuda/taylor_features.cuh"
#include "kernels/taylor_state_readout.h"
#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

using namespace taylor_features;

constexpr const char* kOp = "taylor_state_readout (CUDA)";

// [N | Z] = sums + phi(q) [S | z] per row, then y = N / (Z + eps) (denominator: Z + eps) or y = N.
template <typename D>
__global__ void forward_kernel(HeadShape s, int Dp, Scale c, bool normalize, float eps, const D* q,
                               const float* state, const float* sums, D* y, float* den) {
  const int E = static_cast<int>(s.e) + 1, f = static_cast<int>(s.d), e = static_cast<int>(s.e);
  const int64_t n = s.B * s.T * s.H;
  for (int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; row < n;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t h = row % s.H, b = row / (s.T * s.H);
    const float* S = state + (b * s.H + h) * Dp * E;
    float x[kMaxFeature];
    load_row(x, q, row, f);
    auto sum = [&](int col) { return sums[row * E + col] + feature_dot(x, f, Dp, c, S, E, col); };
    const float z = normalize ? sum(e) + eps : 1.f;
    if (normalize) den[row] = z;  // [B, T, H]: the row's own index
    for (int col = 0; col < e; ++col) y[row * e + col] = from_f32<D>(normalize ? sum(col) / z : sum(col));
  }
}

// G = d[N | Z] per row into dsums (dN = dy / den, dZ = -(dy . y) / den; else dN = dy, dZ = 0),
// then dq = P'(q)^T (G [S | z]^T) when wanted.
template <typename D>
__global__ void grad_rows_kernel(HeadShape s, int Dp, Scale c, bool normalize, const D* q, const float* state,
                                 const D* y, const float* den, const D* dy, float* dsums, D* dq) {
  const int E = static_cast<int>(s.e) + 1, f = static_cast<int>(s.d), e = static_cast<int>(s.e);
  const int64_t n = s.B * s.T * s.H;
  for (int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; row < n;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t h = row % s.H, b = row / (s.T * s.H);
    float* G = dsums + row * E;
    const float inv = normalize ? 1.f / den[row] : 1.f;
    float dot = 0.f;
    for (int col = 0; col < e; ++col) {
      const float g = to_f32(dy[row * e + col]);
      if (normalize) dot = fmaf(g, to_f32(y[row * e + col]), dot);
      G[col] = g * inv;
    }
    G[e] = normalize ? -dot * inv : 0.f;
    if (!dq) continue;
    const float* S = state + (b * s.H + h) * Dp * E;
    float x[kMaxFeature], dx[kMaxFeature];
    load_row(x, q, row, f);
    for (int a = 0; a < f; ++a) dx[a] = 0.f;
    add_feature_grad(x, dx, f, Dp, c, [&](int p) {  // dphi_p = S[p, :] . G
      float g = 0.f;
      for (int col = 0; col < E; ++col) g = fmaf(S[p * E + col], G[col], g);
      return g;
    });
    for (int a = 0; a < f; ++a) dq[row * f + a] = from_f32<D>(dx[a]);
  }
}

}  // namespace

template <typename T>
void taylor_state_readout_forward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const float* state,
                                  const float* sums, T* y, float* denominator) {
  check_feature_dim(kOp, s);
  if (s.B * s.T * s.H == 0) return;
  const int Dp = static_cast<int>(taylor_feature_dim(s.d));
  forward_kernel<<<grid_for(s.B * s.T * s.H, kRowThreads), kRowThreads, 0, compute_stream()>>>(
      s, Dp, scale_for(s.d), a.normalize, static_cast<float>(a.eps), dev(q), state, sums, dev(y), denominator);
  EAT_CUDA_CHECK_LAUNCH();
}

template <typename T>
void taylor_state_readout_backward(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const float* state,
                                   const T* y, const float* denominator, const T* dy, float* dsums, T* dq,
                                   float* dstate) {
  check_feature_dim(kOp, s);
  const int Dp = static_cast<int>(taylor_feature_dim(s.d));
  const Scale c = scale_for(s.d);
  if (s.B * s.T * s.H > 0) {
    grad_rows_kernel<<<grid_for(s.B * s.T * s.H, kRowThreads), kRowThreads, 0, compute_stream()>>>(
        s, Dp, c, a.normalize, dev(q), state, dev(y), denominator, dev(dy), dsums, dev(dq));
    EAT_CUDA_CHECK_LAUNCH();
  }
  if (dstate && s.B * s.H > 0) {  // sum_t phi(q_t)^T G_t (a zero state when T = 0)
    feature_sum_kernel<<<grid_for(s.B * s.H * Dp * (s.e + 1), kRowThreads), kRowThreads, 0, compute_stream()>>>(
        s, Dp, c, dev(q), F32Rows{dsums, static_cast<int>(s.e) + 1}, dstate);
    EAT_CUDA_CHECK_LAUNCH();
  }
}

EAT_TAYLOR_STATE_READOUT_INSTANTIATE(float)
EAT_TAYLOR_STATE_READOUT_INSTANTIATE(bf16)

}  // namespace eat::cuda
