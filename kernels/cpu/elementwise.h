#pragma once
// The CPU's full reductions and fill; the elementwise arithmetic both devices share is declared in
// kernels/elementwise.h.
#include <cstdint>

namespace eat::cpu {

// Sum of all elements in a fixed order (per-thread blocks of a static partition, then in order),
// accumulated in double so f32 sums do not drift with the thread count's block boundaries.
template <typename T> double sum_forward(const T* x, int64_t n);
template <typename T> void fill(T* y, T value, int64_t n);

}  // namespace eat::cpu
