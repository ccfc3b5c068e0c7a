#pragma once
// The inter-segment term of decayed linear attention: what an incoming state S (the state before
// token 0 of this segment) adds to each output, o_t = lambda^(t+1) q_t S. LASP-2 adds it to the
// local (zero-initial-state) output once the states of the earlier ranks are known.
#include <cstdint>
#include <vector>

#include "kernels/cpu/lightning_common.h"

namespace eat::cpu {

// q [B, T, H, d], state [B, H, d, e] -> o [B, T, H, e] (overwritten).
template <typename T>
void state_readout_forward(const LinearAttentionShape& s, const std::vector<double>& decay, const T* q, const T* state, T* o);
// dq = lambda^(t+1) dO S^T; dstate = sum_t lambda^(t+1) q_t^T dO_t. Either output may be null.
template <typename T>
void state_readout_backward(const LinearAttentionShape& s, const std::vector<double>& decay, const T* q, const T* state,
                            const T* dout, T* dq, T* dstate);

}  // namespace eat::cpu
