#pragma once
// The gated channel-mixer core y = act(a) * b, act = SiLU (SwiGLU) or identity (SGLU).
#include <cstdint>

namespace eat::cpu {

template <typename T> void glu_gate_forward(bool silu, const T* a, const T* b, T* y, int64_t n);
// da = dy * b * act'(a), db = dy * act(a); either output may be null.
template <typename T> void glu_gate_backward(bool silu, const T* a, const T* b, const T* dy, T* da, T* db, int64_t n);

}  // namespace eat::cpu
