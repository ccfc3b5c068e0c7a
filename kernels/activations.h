#pragma once
// Pointwise activations: forward y = f(x), backward dx = dy * f'(x) (from the saved input).
// CUDA: f32 arithmetic.
#include <cstdint>

#include "kernels/backends.h"

namespace eat {

enum class Activation { silu, gelu_erf, gelu_tanh, sigmoid };

EAT_DECLARE_KERNELS(
template <typename T> void activation_forward(Activation act, const T* x, T* y, int64_t n);
// dx = dy * act'(x); dx may be dy.
template <typename T> void activation_backward(Activation act, const T* x, const T* dy, T* dx, int64_t n);
)

}  // namespace eat
