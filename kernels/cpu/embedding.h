#pragma once
// Row gather from a [V, D] table and its scatter-add backward.
#include <cstdint>

namespace eat::cpu {

template <typename T> void embedding_forward(const int64_t* ids, const T* weight, T* y, int64_t n, int64_t dim);
// dweight = 0, then dweight[ids[i]] += dy[i] for i in order. Threads own column blocks, so every
// element is accumulated in token order: deterministic, no atomics.
template <typename T> void embedding_backward(const int64_t* ids, const T* dy, T* dweight, int64_t n, int64_t vocab, int64_t dim);

}  // namespace eat::cpu
