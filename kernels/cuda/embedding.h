#pragma once
// Row gather from a [V, D] table and its backward on the device (kernels/cpu/embedding.h's
// counterparts). ids are device int64 arrays.
#include <cstdint>

namespace eat::cuda {

template <typename T>
void embedding_forward(const int64_t* ids, const T* weight, T* y, int64_t n, int64_t dim);

// Host side, before the backward: groups token positions by id with a stable counting sort.
// offsets [vocab + 1]: the positions of id v are order[offsets[v] .. offsets[v + 1]), ascending.
void group_by_id(const int64_t* ids, int64_t n, int64_t vocab, int64_t* offsets, int64_t* order);
// dweight[v] = sum of dy[i] over the positions i of id v in token order (zero for unused ids).
// offsets and order (from group_by_id) are device arrays. Each output element has one owner
// thread: deterministic, no atomics, the same sums as the CPU kernel.
template <typename T>
void embedding_backward(const int64_t* offsets, const int64_t* order, const T* dy, T* dweight, int64_t vocab, int64_t dim);

}  // namespace eat::cuda
