#include "kernels/norms.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

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

// A row of rms_norm's dx, r (dy w - x c) (w null: 1), written or added to what dxr holds. The
// added form computes the row's values first, in a loop of their own, and then adds them: one
// loop would let the compiler fuse the multiply into the add, whose bits would then differ from
// those of the values stored and added afterwards (add_into), which this must match.
template <bool kAdd, typename T>
void add_row_gradient(T* dxr, const T* xr, const T* gr, const T* w, T rt, T ct, int64_t cols) {
  constexpr int64_t kChunk = 256;
  for (int64_t j0 = 0; j0 < cols; j0 += kChunk) {
    const int64_t n = std::min(kChunk, cols - j0);
    alignas(64) T values[kChunk];
    T* out = kAdd ? values : dxr + j0;
    const T *x = xr + j0, *g = gr + j0;
    if (w) {
      const T* wj = w + j0;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) out[j] = rt * (g[j] * wj[j] - x[j] * ct);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) out[j] = rt * (g[j] - x[j] * ct);
    }
    if constexpr (kAdd) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) dxr[j0 + j] += values[j];
    }
  }
}

// A row's 1 / rms: 1 / sqrt(mean(x^2) + eps), in double.
template <typename T>
double inverse_rms(const T* xr, int64_t cols, double eps) {
  return 1.0 / std::sqrt(dot_f64<T>(xr, xr, nullptr, cols) / static_cast<double>(cols) + eps);
}

// A row of dx from the gradient g of the normalised row (dy w, or dy alone without w): the mean
// over the row of g * xhat in double, then dx = ri (g - x ri mean) with the row's two scales
// rounded to T and the elementwise work in T; written, or added to what dxr holds.
template <typename T>
void rms_dx_row(const T* xr, const T* gr, const T* w, double ri, T* dxr, int64_t cols, bool accumulate) {
  const double dot = dot_f64<T>(gr, xr, w, cols) * ri / static_cast<double>(cols);
  const T rt = static_cast<T>(ri), ct = static_cast<T>(ri * dot);
  if (accumulate)
    add_row_gradient<true>(dxr, xr, gr, w, rt, ct, cols);
  else
    add_row_gradient<false>(dxr, xr, gr, w, rt, ct, cols);
}

}  // namespace

template <typename T>
void rms_norm_forward(const T* x, const T* w, T* y, double* r, int64_t rows, int64_t cols, double eps) {
#pragma omp parallel for schedule(static) if(parallel_worth(rows * cols))
  for (int64_t i = 0; i < rows; ++i) {
    const T* xr = x + i * cols;
    const double ri = inverse_rms(xr, cols, eps);
    r[i] = ri;
    // The row's scale in double, the elementwise product in T: a whole vector of f32 at a time.
    const T rt = static_cast<T>(ri);
    T* yr = y + i * cols;
    if (w) {
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] * rt * w[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) yr[j] = xr[j] * rt;
    }
  }
}

// Rows per block of the weight gradient: each block sums its rows' dy * xhat into its own
// partial row, and the partials are added in block order, so dw does not depend on the threads.
constexpr int64_t kRmsRowBlock = 64;

template <typename T>
void rms_norm_backward(const T* x, const T* w, const double* r, const T* dy, T* dx, T* dw, int64_t rows, int64_t cols,
                       bool accumulate_dx) {
  // One pass over x and dy for both gradients, row blocks over the threads.
  const int64_t blocks = (rows + kRmsRowBlock - 1) / kRmsRowBlock;
  std::unique_ptr<double[]> partials(dw ? new double[static_cast<size_t>(blocks * cols)] : nullptr);
#pragma omp parallel for schedule(static) if(parallel_worth(rows * cols))
  for (int64_t b = 0; b < blocks; ++b) {
    double* part = dw ? partials.get() + b * cols : nullptr;
    if (part) std::fill(part, part + cols, 0.0);
    for (int64_t i = b * kRmsRowBlock; i < std::min(rows, (b + 1) * kRmsRowBlock); ++i) {
      const T *xr = x + i * cols, *gr = dy + i * cols;
      const double ri = r[i];
      if (dx) rms_dx_row(xr, gr, w, ri, dx + i * cols, cols, accumulate_dx);
      if (part)
        for (int64_t j = 0; j < cols; ++j) part[j] += static_cast<double>(gr[j]) * (xr[j] * ri);
    }
  }
  if (!dw) return;
  constexpr int64_t kCols = 64;  // columns per task of the sum over blocks
#pragma omp parallel for schedule(static) if(parallel_worth(blocks * cols))
  for (int64_t j0 = 0; j0 < cols; j0 += kCols) {
    const int64_t width = std::min(kCols, cols - j0);
    double sum[kCols] = {};
    for (int64_t b = 0; b < blocks; ++b) {
      const double* part = partials.get() + b * cols + j0;
      for (int64_t j = 0; j < width; ++j) sum[j] += part[j];
    }
    for (int64_t j = 0; j < width; ++j) dw[j0 + j] = static_cast<T>(sum[j]);
  }
}

template <typename T>
void rms_norm_gate_forward(const T* x, const T* gate, T* y, double* r, int64_t rows, int64_t cols, double eps) {
#pragma omp parallel for schedule(static) if(parallel_worth(rows * cols))
  for (int64_t i = 0; i < rows; ++i) {
    const T *xr = x + i * cols, *ur = gate + i * cols;
    const double ri = inverse_rms(xr, cols, eps);
    r[i] = ri;
    const T rt = static_cast<T>(ri);
    T* yr = y + i * cols;
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] * rt) * ur[j];
  }
}

template <typename T>
void rms_norm_gate_backward(const T* x, const T* gate, const double* r, const T* dy, T* dx, T* dgate, int64_t rows,
                            int64_t cols, bool accumulate_dx) {
#pragma omp parallel for schedule(static) if(parallel_worth(rows * cols))
  for (int64_t i = 0; i < rows; ++i) {
    const T *xr = x + i * cols, *ur = gate + i * cols, *gr = dy + i * cols;
    const T rt = static_cast<T>(r[i]);
    if (dx) {
      // The normalised row's gradient dy * gate, rounded to T as mul's backward leaves it.
      thread_local std::vector<T> g;
      g.resize(static_cast<size_t>(cols));
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) g[static_cast<size_t>(j)] = gr[j] * ur[j];
      rms_dx_row(xr, g.data(), static_cast<const T*>(nullptr), r[i], dx + i * cols, cols, accumulate_dx);
    }
    if (dgate) {
      T* dgr = dgate + i * cols;
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) dgr[j] = gr[j] * (xr[j] * rt);
    }
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
  template void rms_norm_backward<T>(const T*, const T*, const double*, const T*, T*, T*, int64_t, int64_t, bool); \
  template void rms_norm_gate_forward<T>(const T*, const T*, T*, double*, int64_t, int64_t, double);           \
  template void rms_norm_gate_backward<T>(const T*, const T*, const double*, const T*, T*, T*, int64_t, int64_t, bool); \
  template void l2_normalize_forward<T>(const T*, T*, double*, int64_t, int64_t, double);                      \
  template void l2_normalize_backward<T>(const T*, const double*, const T*, T*, int64_t, int64_t, double);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
