#include "kernels/activations.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/sigmoid_block.h"

#include <cmath>

namespace eat::cpu {

namespace {

// Value and derivative of the GELUs at x, in the input's precision (SiLU and sigmoid take the
// vectorised path of sigmoid_block.h).
template <typename T>
inline T gelu_value(bool tanh_form, T x) {
  if (!tanh_form) return T(0.5) * x * (T(1) + std::erf(x * T(M_SQRT1_2)));
  const T c = T(0.7978845608028654);  // sqrt(2 / pi)
  return T(0.5) * x * (T(1) + std::tanh(c * (x + T(0.044715) * x * x * x)));
}

template <typename T>
inline T gelu_derivative(bool tanh_form, T x) {
  if (!tanh_form) {
    const T inv_sqrt_2pi = T(0.3989422804014327);
    return T(0.5) * (T(1) + std::erf(x * T(M_SQRT1_2))) + x * inv_sqrt_2pi * std::exp(T(-0.5) * x * x);
  }
  const T c = T(0.7978845608028654);
  T u = c * (x + T(0.044715) * x * x * x);
  T t = std::tanh(u);
  return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * c * (T(1) + T(3 * 0.044715) * x * x);
}

}  // namespace

// SiLU and sigmoid, the hot ones (every q and k of TransNormerLLM, every gate), take the
// vectorised sigmoid; the GELUs stay scalar.
template <typename T>
void activation_forward(Activation act, const T* x, T* y, int64_t n) {
  if (act == Activation::sigmoid) {
    for_pointwise_blocks(n, [&](int64_t i0, int64_t len) { sigmoid_block(x + i0, y + i0, len); });
    return;
  }
  if (act == Activation::silu) {
    for_pointwise_blocks(n, [&](int64_t i0, int64_t len) {
      alignas(64) T s[kPointwiseBlock];
      sigmoid_block(x + i0, s, len);
      ArrayMap<T>(y + i0, len) = ConstArrayMap<T>(x + i0, len) * ConstArrayMap<T>(s, len);
    });
    return;
  }
  const bool tanh_form = act == Activation::gelu_tanh;
#pragma omp parallel for schedule(static) if(parallel_worth(n))
  for (int64_t i = 0; i < n; ++i) y[i] = gelu_value(tanh_form, x[i]);
}

template <typename T>
void activation_backward(Activation act, const T* x, const T* dy, T* dx, int64_t n) {
  if (act == Activation::silu || act == Activation::sigmoid) {
    const bool silu = act == Activation::silu;
    for_pointwise_blocks(n, [&](int64_t i0, int64_t len) {
      alignas(64) T s[kPointwiseBlock];
      sigmoid_block(x + i0, s, len);
      ConstArrayMap<T> X(x + i0, len), DY(dy + i0, len), S(s, len);
      ArrayMap<T> DX(dx + i0, len);
      if (silu)
        DX = DY * silu_slope(X, S);
      else
        DX = DY * (S * (T(1) - S));
    });
    return;
  }
  const bool tanh_form = act == Activation::gelu_tanh;
#pragma omp parallel for schedule(static) if(parallel_worth(n))
  for (int64_t i = 0; i < n; ++i) dx[i] = dy[i] * gelu_derivative(tanh_form, x[i]);
}

#define EAT_INSTANTIATE(T)                                                  \
  template void activation_forward<T>(Activation, const T*, T*, int64_t); \
  template void activation_backward<T>(Activation, const T*, const T*, T*, int64_t);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
