#include "kernels/embedding.h"
#include "kernels/cpu/parallel.h"

#include <algorithm>
#include <cstring>

namespace eat::cpu {

template <typename T>
void embedding_forward(const int64_t* ids, const T* weight, T* y, int64_t n, int64_t dim) {
#pragma omp parallel for schedule(static) if(parallel_worth(n * dim))
  for (int64_t i = 0; i < n; ++i) std::memcpy(y + i * dim, weight + ids[i] * dim, sizeof(T) * static_cast<size_t>(dim));
}

template <typename T>
void embedding_backward(const int64_t* ids, const T* dy, T* dweight, int64_t n, int64_t vocab, int64_t dim) {
  std::fill(dweight, dweight + vocab * dim, T(0));
  constexpr int64_t kCols = 32;
  const int64_t blocks = (dim + kCols - 1) / kCols;
#pragma omp parallel for schedule(static) if(parallel_worth(n * dim))
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kCols, j1 = std::min(dim, j0 + kCols);
    for (int64_t i = 0; i < n; ++i) {
      T* dst = dweight + ids[i] * dim;
      const T* src = dy + i * dim;
      for (int64_t j = j0; j < j1; ++j) dst[j] += src[j];
    }
  }
}

template void embedding_forward<float>(const int64_t*, const float*, float*, int64_t, int64_t);
template void embedding_forward<double>(const int64_t*, const double*, double*, int64_t, int64_t);
template void embedding_backward<float>(const int64_t*, const float*, float*, int64_t, int64_t, int64_t);
template void embedding_backward<double>(const int64_t*, const double*, double*, int64_t, int64_t, int64_t);

}  // namespace eat::cpu
