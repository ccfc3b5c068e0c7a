#pragma once
// The gradient of an initial state shared by every sequence of the batch (Titans' memory ops):
// the per-head work writes per-sequence gradients, then they are summed here in batch order, so
// the result does not depend on the thread count.
#include <cstdint>

namespace eat::cpu {

// out[i] = sum over b < B of per_sequence[b * n + i], for i < n (zero for B = 0).
template <typename T>
void sum_over_batch(const T* per_sequence, int64_t B, int64_t n, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    T sum = 0;
    for (int64_t b = 0; b < B; ++b) sum += per_sequence[b * n + i];
    out[i] = sum;
  }
}

}  // namespace eat::cpu
