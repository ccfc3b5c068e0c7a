#include "kernels/softmax.h"
#include "kernels/cpu/parallel.h"

#include <cmath>

namespace eat::cpu {

template <typename T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if(parallel_worth(rows * cols))
  for (int64_t i = 0; i < rows; ++i) {
    const T* xr = x + i * cols;
    T* yr = y + i * cols;
    double m = -INFINITY;
    for (int64_t j = 0; j < cols; ++j) m = std::max(m, static_cast<double>(xr[j]));
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += std::exp(static_cast<double>(xr[j]) - m);
    const double inv = 1.0 / s;
    for (int64_t j = 0; j < cols; ++j) yr[j] = static_cast<T>(std::exp(static_cast<double>(xr[j]) - m) * inv);
  }
}

template <typename T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if(parallel_worth(rows * cols))
  for (int64_t i = 0; i < rows; ++i) {
    const T *yr = y + i * cols, *gr = dy + i * cols;
    double dot = 0;
    for (int64_t j = 0; j < cols; ++j) dot += static_cast<double>(yr[j]) * gr[j];
    for (int64_t j = 0; j < cols; ++j) dx[i * cols + j] = static_cast<T>(yr[j] * (gr[j] - dot));
  }
}

template void softmax_forward<float>(const float*, float*, int64_t, int64_t);
template void softmax_forward<double>(const double*, double*, int64_t, int64_t);
template void softmax_backward<float>(const float*, const float*, float*, int64_t, int64_t);
template void softmax_backward<double>(const double*, const double*, double*, int64_t, int64_t);

}  // namespace eat::cpu
