#pragma once
// Elementwise arithmetic and full reductions. Raw pointers, templated on the scalar type.
#include <cstdint>

namespace eat::cpu {

template <typename T> void add_forward(const T* a, const T* b, T* y, int64_t n);
template <typename T> void mul_forward(const T* a, const T* b, T* y, int64_t n);
// da = dy * b, db = dy * a (either output may be null when not needed)
template <typename T> void mul_backward(const T* a, const T* b, const T* dy, T* da, T* db, int64_t n);
template <typename T> void scale_forward(const T* x, T s, T* y, int64_t n);
// Sum of all elements in a fixed order (per-thread blocks of a static partition, then in order),
// accumulated in double so f32 sums do not drift with the thread count's block boundaries.
template <typename T> double sum_forward(const T* x, int64_t n);
template <typename T> void fill(T* y, T value, int64_t n);

}  // namespace eat::cpu
