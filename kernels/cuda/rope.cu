// RoPE: one thread per rotated pair (x_i, x_{i + d/2}) of one (b, t, h) row, in a grid-stride
// loop over B*T*H*(d/2) pairs. The angle is formed in double, as on the CPU, so positions far from
// zero keep their precision; cos and sin are rounded to f32 before the rotation, also as on the CPU.
#include "runtime/cuda/check.h"
#include "runtime/cuda/stream.h"
#include "kernels/cuda/pointwise.cuh"
#include "kernels/rope.h"
#include "kernels/cuda/scalar.cuh"

namespace eat::cuda {

namespace {

template <typename D>
__global__ void rope_kernel(const D* x, D* y, int64_t T_, int64_t H, int64_t d, double theta, int64_t offset, int64_t chunk,
                            double sign,
                            int64_t pairs) {
  const int64_t half = d / 2;
  EAT_GRID_STRIDE(p, pairs) {
    const int64_t i = p % half, row = p / half;  // row = (b * T + t) * H + h
    const int64_t t = (row / H) % T_;
    const double freq = pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(d));
    double s, c;
    sincos(static_cast<double>((offset + t) / chunk) * freq, &s, &c);
    const float cf = static_cast<float>(c), sf = static_cast<float>(sign * s);
    const int64_t a = row * d + i, b = a + half;
    const float x1 = to_f32(x[a]), x2 = to_f32(x[b]);
    y[a] = from_f32<D>(x1 * cf - x2 * sf);
    y[b] = from_f32<D>(x2 * cf + x1 * sf);
  }
}

}  // namespace

template <typename T>
void rope_apply(const T* x, T* y, int64_t B, int64_t T_, int64_t H, int64_t d, double theta, int64_t offset, int64_t chunk,
                bool inverse) {
  const cudaStream_t stream = compute_stream();
  const int64_t pairs = B * T_ * H * (d / 2);
  if (pairs == 0) return;
  rope_kernel<<<grid_for(pairs), 256, 0, stream>>>(dev(x), dev(y), T_, H, d, theta, offset, chunk,
                                                                   inverse ? -1.0 : 1.0, pairs);
  EAT_CUDA_CHECK_LAUNCH();
}

template void rope_apply<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t, double, int64_t, int64_t, bool);
template void rope_apply<eat::bf16>(const eat::bf16*, eat::bf16*, int64_t, int64_t, int64_t, int64_t, double, int64_t, int64_t, bool);

}  // namespace eat::cuda
