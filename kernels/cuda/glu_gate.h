#pragma once
// The gated channel-mixer core y = act(a) * b on the device (kernels/cpu/glu_gate.h's
// counterpart), act = SiLU (SwiGLU) or identity (SGLU). f32 arithmetic.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace eat::cuda {

template <typename T> void glu_gate_forward(bool silu, const T* a, const T* b, T* y, int64_t n, cudaStream_t stream);
// da = dy * b * act'(a), db = dy * act(a); either output may be null.
template <typename T>
void glu_gate_backward(bool silu, const T* a, const T* b, const T* dy, T* da, T* db, int64_t n, cudaStream_t stream);

}  // namespace eat::cuda
