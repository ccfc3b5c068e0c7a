// The Taylor state sum on the GPU (kernels/taylor_state_sum.h). Small next to the attention it
// accompanies (O(T D' e) once per layer), so a plain version: the forward sums each state element
// in one thread over the tokens in order; the backward gives each token one thread, which reads
// its key and value row and the head's state gradient. No atomics: deterministic. Storage f32 or
// bf16; the state, its gradient and every sum are f32.
#include <cmath>

#include "base/dtype.h"
#include "base/error.h"
#include "kernels/cuda/scalar.cuh"
#include "kernels/taylor_state_sum.h"
#include "runtime/cuda/stream.h"

namespace eat::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxFeature = 16;
constexpr const char* kOp = "taylor_state_sum (CUDA)";

// The feature map's constants (kernels/cpu/taylor_common.h, FeatureScale).
struct Scale {
  float c1, c2, c_diag;
};

Scale scale_for(int64_t f) {
  const double fd = static_cast<double>(f);
  return {static_cast<float>(1.0 / std::pow(fd, 0.25)), static_cast<float>(1.0 / std::sqrt(fd)),
          static_cast<float>(1.0 / std::sqrt(2.0 * fd))};
}

// Feature p of the key x (f values): 1, x_a c1, or x_a x_b c_ab for the pair (a, b), a <= b, in
// the packing order of the CPU kernels. a and b receive the pair (-1 for the constant feature,
// a = b = index for the linear ones, with linear = true).
struct Feature {
  int a, b;
  bool linear;
};

__device__ Feature feature_of(int p, int f) {
  if (p == 0) return {-1, -1, false};
  if (p <= f) return {p - 1, p - 1, true};
  int a = 0, rest = p - 1 - f;
  while (rest >= f - a) rest -= f - a++;
  return {a, a + rest, false};
}

__device__ float feature_value(const Feature& F, const float* x, const Scale& c) {
  if (F.a < 0) return 1.f;
  if (F.linear) return x[F.a] * c.c1;
  return x[F.a] * x[F.b] * (F.a == F.b ? c.c_diag : c.c2);
}

template <typename D>
__global__ void forward_kernel(HeadShape s, int Dp, Scale c, const D* k, const D* v, float* state) {
  const int E = static_cast<int>(s.e) + 1, f = static_cast<int>(s.d);
  const int64_t n = s.B * s.H * Dp * E;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int col = static_cast<int>(i % E), p = static_cast<int>((i / E) % Dp);
    const int64_t bh = i / (static_cast<int64_t>(E) * Dp), b = bh / s.H, h = bh % s.H;
    const Feature F = feature_of(p, f);
    float acc = 0.f, x[kMaxFeature];
    for (int64_t t = 0; t < s.T; ++t) {
      const int64_t row = (b * s.T + t) * s.H + h;
      for (int a = 0; a < f; ++a) x[a] = to_f32(k[row * f + a]);
      const float value = col < s.e ? to_f32(v[row * s.e + col]) : 1.f;
      acc += feature_value(F, x, c) * value;
    }
    state[i] = acc;
  }
}

template <typename D>
__global__ void backward_kernel(HeadShape s, int Dp, Scale c, const D* k, const D* v, const float* dstate, D* dk,
                                D* dv) {
  const int E = static_cast<int>(s.e) + 1, f = static_cast<int>(s.d), e = static_cast<int>(s.e);
  const int64_t n = s.B * s.T * s.H;
  for (int64_t row = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; row < n;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t h = row % s.H, b = row / (s.T * s.H);
    const float* dS = dstate + (b * s.H + h) * Dp * E;
    float x[kMaxFeature], dx[kMaxFeature];
    for (int a = 0; a < f; ++a) x[a] = to_f32(k[row * f + a]), dx[a] = 0.f;
    if (dk) {
      for (int p = 1; p < Dp; ++p) {
        float g = dS[p * E + e];  // the ones column
        for (int col = 0; col < e; ++col) g += dS[p * E + col] * to_f32(v[row * e + col]);
        const Feature F = feature_of(p, f);
        if (F.linear) {
          dx[F.a] += g * c.c1;
        } else if (F.a == F.b) {
          dx[F.a] += 2.f * c.c_diag * g * x[F.a];
        } else {
          dx[F.a] += g * c.c2 * x[F.b];
          dx[F.b] += g * c.c2 * x[F.a];
        }
      }
      for (int a = 0; a < f; ++a) dk[row * f + a] = from_f32<D>(dx[a]);
    }
    if (dv) {
      for (int col = 0; col < e; ++col) {
        float acc = 0.f;
        for (int p = 0; p < Dp; ++p) acc += feature_value(feature_of(p, f), x, c) * dS[p * E + col];
        dv[row * e + col] = from_f32<D>(acc);
      }
    }
  }
}

void check_dims(const HeadShape& s) {
  EAT_CHECK(s.d >= 1 && s.d <= kMaxFeature, kOp, ": feature dim f = ", s.d, " is outside [1, ", kMaxFeature, "]");
}

}  // namespace

template <typename T>
void taylor_state_sum_forward(const HeadShape& s, const T* k, const T* v, float* state) {
  check_dims(s);
  const int Dp = static_cast<int>(taylor_feature_dim(s.d));
  forward_kernel<<<grid_for(s.B * s.H * Dp * (s.e + 1), kThreads), kThreads, 0, compute_stream()>>>(
      s, Dp, scale_for(s.d), dev(k), dev(v), state);
}

template <typename T>
void taylor_state_sum_backward(const HeadShape& s, const T* k, const T* v, const float* dstate, T* dk, T* dv) {
  check_dims(s);
  if (!dk && !dv) return;
  const int Dp = static_cast<int>(taylor_feature_dim(s.d));
  backward_kernel<<<grid_for(s.B * s.T * s.H, kThreads), kThreads, 0, compute_stream()>>>(
      s, Dp, scale_for(s.d), dev(k), dev(v), dstate, dev(dk), dev(dv));
}

EAT_TAYLOR_STATE_SUM_INSTANTIATE(float)
EAT_TAYLOR_STATE_SUM_INSTANTIATE(bf16)

}  // namespace eat::cuda
