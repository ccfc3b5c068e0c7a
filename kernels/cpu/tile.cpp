#include "kernels/tile.h"

#include <algorithm>

#include "kernels/cpu/parallel.h"

namespace eat::cpu {

template <typename T>
void tile_last_forward(const T* x, T* y, int64_t rows, int64_t n, int64_t times) {
#pragma omp parallel for schedule(static) if(parallel_worth(rows * n * times))
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t r = 0; r < times; ++r) std::copy(x + i * n, x + (i + 1) * n, y + (i * times + r) * n);
}

template <typename T>
void tile_last_backward(const T* dy, T* dx, int64_t rows, int64_t n, int64_t times) {
#pragma omp parallel for schedule(static) if(parallel_worth(rows * n * times))
  for (int64_t i = 0; i < rows; ++i) {
    T* out = dx + i * n;
    std::copy(dy + i * times * n, dy + (i * times + 1) * n, out);
    for (int64_t r = 1; r < times; ++r) {
      const T* g = dy + (i * times + r) * n;
      for (int64_t j = 0; j < n; ++j) out[j] += g[j];
    }
  }
}

template void tile_last_forward<float>(const float*, float*, int64_t, int64_t, int64_t);
template void tile_last_forward<double>(const double*, double*, int64_t, int64_t, int64_t);
template void tile_last_backward<float>(const float*, float*, int64_t, int64_t, int64_t);
template void tile_last_backward<double>(const double*, double*, int64_t, int64_t, int64_t);

}  // namespace eat::cpu
