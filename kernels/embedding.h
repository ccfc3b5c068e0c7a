#pragma once
// Row gather from a [V, D] table and its scatter-add backward. The gather is the same on both
// devices; the backward differs: CPU threads own column blocks and walk the ids, while the device
// first has the host group the token positions by id, so that each table row has one owner.
// Either way every element is accumulated in token order: deterministic, no atomics.
#include <cstdint>

#include "kernels/backends.h"

namespace eat {

EAT_DECLARE_KERNELS(
// y[i] = weight[ids[i]] for n ids (on the kernel's device), rows of `dim` elements.
template <typename T> void embedding_forward(const int64_t* ids, const T* weight, T* y, int64_t n, int64_t dim);
)

namespace cpu {
// dweight = 0, then dweight[ids[i]] += dy[i] for i in order.
template <typename T> void embedding_backward(const int64_t* ids, const T* dy, T* dweight, int64_t n, int64_t vocab, int64_t dim);
}  // namespace cpu

namespace cuda {
// Host side, before the backward: groups token positions by id with a stable counting sort.
// offsets [vocab + 1]: the positions of id v are order[offsets[v] .. offsets[v + 1]), ascending.
void group_by_id(const int64_t* ids, int64_t n, int64_t vocab, int64_t* offsets, int64_t* order);
// dweight[v] = sum of dy[i] over the positions i of id v in token order (zero for unused ids).
// offsets and order (from group_by_id) are device arrays; the same sums as the CPU kernel.
template <typename T>
void embedding_backward(const int64_t* offsets, const int64_t* order, const T* dy, T* dweight, int64_t vocab, int64_t dim);
}  // namespace cuda

}  // namespace eat
