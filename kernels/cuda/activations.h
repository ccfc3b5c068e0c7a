#pragma once
// Pointwise activations on the device (kernels/cpu/activations.h's counterparts, same Activation
// selector): forward y = f(x), backward dx = dy * f'(x) from the saved input. f32 arithmetic.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/activations.h"

namespace eat::cuda {

using cpu::Activation;

template <typename T> void activation_forward(Activation act, const T* x, T* y, int64_t n, cudaStream_t stream);
template <typename T>
void activation_backward(Activation act, const T* x, const T* dy, T* dx, int64_t n, cudaStream_t stream);

}  // namespace eat::cuda
