#pragma once
// The Taylor feature map on the GPU, one row at a time, shared by the small per-token and
// per-state-element kernels around the chunked attention (taylor_state_sum.cu,
// taylor_state_readout.cu) and by its tile code (taylor_chunked.cu): the map's constants, feature
// p of a row in the symmetric packing of the CPU kernels (kernels/cpu/taylor_common.h), a row's
// product with a [D', E] state column, the feature gradient of a row, and the state sum
// sum_t phi(x_t)^T w_t over a head's tokens for row values w given by an accessor.
#include <cmath>

#include "base/dtype.h"
#include "base/error.h"
#include "kernels/cuda/scalar.cuh"
#include "kernels/head_shape.h"

namespace eat::cuda::taylor_features {

constexpr int kMaxFeature = 16;
constexpr int kRowThreads = 256;  // per block of the per-row and per-state-element kernels

// These kernels keep a row's f values in registers.
inline void check_feature_dim(const char* op, const HeadShape& s) {
  EAT_CHECK(s.d >= 1 && s.d <= kMaxFeature, op, ": feature dim f = ", s.d, " is outside [1, ", kMaxFeature, "]");
}

// phi(x) = [1, x c1, x_a x_b c_ab] with c_ab = c2 (a < b), c_aa = c_diag; c2 = 1 / sqrt(f) is also
// the score scale.
struct Scale {
  float c1, c2, c_diag;
};

inline Scale scale_for(int64_t f) {
  const double fd = static_cast<double>(f);
  return {static_cast<float>(1.0 / std::pow(fd, 0.25)), static_cast<float>(1.0 / std::sqrt(fd)),
          static_cast<float>(1.0 / std::sqrt(2.0 * fd))};
}

// Feature p of a row of f values: the constant (a = b = -1), the linear one of x_a (linear,
// a = b), or the product x_a x_b of the pair a <= b.
struct Feature {
  int a, b;
  bool linear;
};

__device__ __forceinline__ Feature feature_of(int p, int f) {
  if (p == 0) return {-1, -1, false};
  if (p <= f) return {p - 1, p - 1, true};
  int a = 0, rest = p - 1 - f;
  while (rest >= f - a) rest -= f - a++;
  return {a, a + rest, false};
}

__device__ __forceinline__ float feature_value(const Feature& F, const float* x, const Scale& c) {
  if (F.a < 0) return 1.f;
  if (F.linear) return x[F.a] * c.c1;
  return x[F.a] * x[F.b] * (F.a == F.b ? c.c_diag : c.c2);
}

// sum_p phi_p(x) M[p, col] for a [Dp, E] matrix M (row-major).
__device__ __forceinline__ float feature_dot(const float* x, int f, int Dp, const Scale& c, const float* M, int E,
                                             int col) {
  float acc = 0.f;
  for (int p = 0; p < Dp; ++p) acc = fmaf(feature_value(feature_of(p, f), x, c), M[p * E + col], acc);
  return acc;
}

// dx += (d phi / dx)^T u for one row, u_p = the gradient of feature p (p >= 1; the constant has none).
template <typename U>
__device__ void add_feature_grad(const float* x, float* dx, int f, int Dp, const Scale& c, U&& u) {
  for (int p = 1; p < Dp; ++p) {
    const float g = u(p);
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
}

// Row values for the state sums: the values extended by a one, [v | 1] (e + 1 columns)...
template <typename D>
struct ValuesWithOnes {
  const D* v;
  int e;
  __device__ float at(int64_t row, int col) const { return col < e ? to_f32(v[row * e + col]) : 1.f; }
};
// ...or f32 rows of E columns as they are (a gradient of [N | Z]).
struct F32Rows {
  const float* g;
  int E;
  __device__ float at(int64_t row, int col) const { return g[row * E + col]; }
};

// One row of x (f values) into registers.
template <typename D>
__device__ __forceinline__ void load_row(float* xr, const D* x, int64_t row, int f) {
  for (int a = 0; a < f; ++a) xr[a] = to_f32(x[row * f + a]);
}

// state[bh, p, col] = sum_t phi_p(x_t) w_t[col] over the tokens of each head, in token order, one
// thread per state element (no atomics: deterministic). x [B, T, H, f] (s.d = f), the state
// [B, H, Dp, s.e + 1] f32.
template <typename D, typename W>
__global__ void feature_sum_kernel(HeadShape s, int Dp, Scale c, const D* x, W w, float* state) {
  const int E = static_cast<int>(s.e) + 1, f = static_cast<int>(s.d);
  const int64_t n = s.B * s.H * Dp * E;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int col = static_cast<int>(i % E), p = static_cast<int>((i / E) % Dp);
    const int64_t bh = i / (static_cast<int64_t>(E) * Dp), b = bh / s.H, h = bh % s.H;
    const Feature F = feature_of(p, f);
    float acc = 0.f, xr[kMaxFeature];
    for (int64_t t = 0; t < s.T; ++t) {
      const int64_t row = (b * s.T + t) * s.H + h;
      load_row(xr, x, row, f);
      acc += feature_value(F, xr, c) * w.at(row, col);
    }
    state[i] = acc;
  }
}

}  // namespace eat::cuda::taylor_features
