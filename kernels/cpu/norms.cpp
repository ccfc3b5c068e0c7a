#include "kernels/norms.h"

#include <cmath>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/cpu/parallel.h"

namespace eat::cpu {

namespace {

// sum_j a[j] b[j] (w[j] when w is given) in double, over eight running sums combined in a fixed
// order: one chain of dependent adds would cost an add's latency per element, and the fixed
// split keeps the result independent of threads and schedules.
template <typename T>
double dot_f64(const T* a, const T* b, const T* w, int64_t n) {
  double acc[8] = {};
  int64_t j = 0;
  if (w) {
    for (; j + 8 <= n; j += 8)
      for (int k = 0; k < 8; ++k)
        acc[k] += static_cast<double>(a[j + k]) * static_cast<double>(b[j + k]) * static_cast<double>(w[j + k]);
  } else {
    for (; j + 8 <= n; j += 8)
      for (int k = 0; k < 8; ++k) acc[k] += static_cast<double>(a[j + k]) * static_cast<double>(b[j + k]);
  }
  double tail = 0;
  for (; j < n; ++j) tail += static_cast<double>(a[j]) * static_cast<double>(b[j]) * (w ? static_cast<double>(w[j]) : 1.0);
  return (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))) + tail;
}

}  // namespace

template <typename T>
void rms_norm_forward(const T* x, const T* w, T* y, double* r, int64_t rows, int64_t cols, double eps) {
#pragma omp parallel for schedule(static) if(parallel_worth(rows * cols))
  for (int64_t i = 0; i < rows; ++i) {
    const T* xr = x + i * cols;
    const double ss = dot_f64<T>(xr, xr, nullptr, cols);
    const double ri = 1.0 / std::sqrt(ss / static_cast<double>(cols) + eps);
    r[i] = ri;
    for (int64_t j = 0; j < cols; ++j) y[i * cols + j] = static_cast<T>(xr[j] * ri * (w ? static_cast<double>(w[j]) : 1.0));
  }
}

template <typename T>
void rms_norm_backward(const T* x, const T* w, const double* r, const T* dy, T* dx, T* dw, int64_t rows, int64_t cols) {
  if (dx) {
#pragma omp parallel for schedule(static) if(parallel_worth(rows * cols))
    for (int64_t i = 0; i < rows; ++i) {
      const T *xr = x + i * cols, *gr = dy + i * cols;
      // The mean over the row of (dy * w) * xhat.
      const double dot = dot_f64<T>(gr, xr, w, cols) * r[i] / static_cast<double>(cols);
      for (int64_t j = 0; j < cols; ++j)
        dx[i * cols + j] = static_cast<T>(r[i] * (static_cast<double>(gr[j]) * (w ? w[j] : T(1)) - xr[j] * r[i] * dot));
    }
  }
  if (dw) {
    // dw = column sums of dy * xhat: form the product, then the fixed-order column reduction.
    std::vector<T> prod(static_cast<size_t>(rows * cols));
#pragma omp parallel for schedule(static) if(parallel_worth(rows * cols))
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        prod[static_cast<size_t>(i * cols + j)] = static_cast<T>(dy[i * cols + j] * (x[i * cols + j] * r[i]));
    column_sums<T>(prod.data(), dw, rows, cols);
  }
}

template <typename T>
void l2_normalize_forward(const T* x, T* y, double* norm, int64_t rows, int64_t cols, double eps) {
#pragma omp parallel for schedule(static) if(parallel_worth(rows * cols))
  for (int64_t i = 0; i < rows; ++i) {
    norm[i] = std::sqrt(dot_f64<T>(x + i * cols, x + i * cols, nullptr, cols));
    const double inv = 1.0 / std::max(norm[i], eps);
    for (int64_t j = 0; j < cols; ++j) y[i * cols + j] = static_cast<T>(x[i * cols + j] * inv);
  }
}

template <typename T>
void l2_normalize_backward(const T* x, const double* norm, const T* dy, T* dx, int64_t rows, int64_t cols, double eps) {
#pragma omp parallel for schedule(static) if(parallel_worth(rows * cols))
  for (int64_t i = 0; i < rows; ++i) {
    const T *xr = x + i * cols, *gr = dy + i * cols;
    if (norm[i] <= eps) {  // the denominator is the constant eps: a plain scaling
      for (int64_t j = 0; j < cols; ++j) dx[i * cols + j] = static_cast<T>(gr[j] / eps);
      continue;
    }
    const double inv = 1.0 / norm[i];
    const double dot = dot_f64<T>(gr, xr, nullptr, cols) * inv;  // <dy, y>
    for (int64_t j = 0; j < cols; ++j) dx[i * cols + j] = static_cast<T>((gr[j] - xr[j] * inv * dot) * inv);
  }
}

#define EAT_INSTANTIATE(T)                                                                                       \
  template void rms_norm_forward<T>(const T*, const T*, T*, double*, int64_t, int64_t, double);                \
  template void rms_norm_backward<T>(const T*, const T*, const double*, const T*, T*, T*, int64_t, int64_t);   \
  template void l2_normalize_forward<T>(const T*, T*, double*, int64_t, int64_t, double);                      \
  template void l2_normalize_backward<T>(const T*, const double*, const T*, T*, int64_t, int64_t, double);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
