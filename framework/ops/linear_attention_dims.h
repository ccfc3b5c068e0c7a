#pragma once
// What the decayed linear-attention ops (lightning_attention.cpp, state_readout.cpp) share: the
// CUDA kernels' view of the CPU shape.
#ifdef EAT_WITH_CUDA
#include "kernels/cpu/lightning_common.h"
#include "kernels/cuda/lightning_chunked.h"

namespace eat {

inline cuda::LightningDims cuda_dims(const cpu::LinearAttentionShape& s) { return {s.B, s.T, s.H, s.d, s.e}; }

}  // namespace eat
#endif
