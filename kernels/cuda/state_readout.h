#pragma once
// The contribution of an incoming state to decayed linear attention on the GPU, with the
// semantics of kernels/cpu/state_readout.h: o_t = lambda^(t+1) q_t S. T is float or eat::bf16.
#include <cuda_runtime_api.h>

#include "kernels/cuda/lightning_chunked.h"

namespace eat::cuda {

// q [B, T, H, d], state [B, H, d, e] -> o [B, T, H, e]; decay [H] on the host.
template <typename T>
void state_readout_forward(const LightningDims& s, const double* decay, const T* q, const T* state, T* o,
                           cudaStream_t stream);
// dq = lambda^(t+1) dO S^T; dstate = sum_t lambda^(t+1) q_t^T dO_t. Either output may be null.
template <typename T>
void state_readout_backward(const LightningDims& s, const double* decay, const T* q, const T* state, const T* dout,
                            T* dq, T* dstate, cudaStream_t stream);

}  // namespace eat::cuda
