#pragma once
// The state a segment of decayed linear attention leaves from a zero start, on the GPU, with the
// semantics of kernels/cpu/state_readout.h: S = sum_t lambda^(T-1-t) k_t^T v_t per (batch, head),
// accumulated in f32. T is float or eat::bf16 (storage); the limits of lightning_chunked.h apply.
#include <cuda_runtime_api.h>

#include "kernels/cuda/lightning_chunked.h"

namespace eat::cuda {

// k [B, T, H, d], v [B, T, H, e] -> state [B, H, d, e] (overwritten); decay [H] on the host.
template <typename T>
void state_sum_forward(const LightningDims& s, const double* decay, const T* k, const T* v, T* state,
                       cudaStream_t stream);
// dk = lambda^(T-1-t) v_t dstate^T; dv = lambda^(T-1-t) k_t dstate. Either output may be null.
template <typename T>
void state_sum_backward(const LightningDims& s, const double* decay, const T* k, const T* v, const T* dstate, T* dk,
                        T* dv, cudaStream_t stream);

}  // namespace eat::cuda
