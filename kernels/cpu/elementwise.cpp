#include "kernels/elementwise.h"
#include "kernels/cpu/parallel.h"

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <vector>

namespace eat::cpu {

template <typename T>
void add_forward(const T* a, const T* b, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if(parallel_worth(n))
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

template <typename T>
void mul_forward(const T* a, const T* b, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if(parallel_worth(n))
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

template <typename T>
void mul_backward(const T* a, const T* b, const T* dy, T* da, T* db, int64_t n) {
#pragma omp parallel for simd schedule(static) if(parallel_worth(n))
  for (int64_t i = 0; i < n; ++i) {  // db first: da may be dy
    if (db) db[i] = dy[i] * a[i];
    if (da) da[i] = dy[i] * b[i];
  }
}

template <typename T>
void scale_forward(const T* x, double factor, T* y, int64_t n) {
  const T s = static_cast<T>(factor);
#pragma omp parallel for simd schedule(static) if(parallel_worth(n))
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s;
}

template <typename T>
double sum_forward(const T* x, int64_t n) {
  // Fixed blocks independent of the thread count, summed in block order: bit-identical results
  // for any number of threads.
  constexpr int64_t kBlock = 4096;
  int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<std::size_t>(blocks), 0.0);
#pragma omp parallel for schedule(static) if(parallel_worth(n))
  for (int64_t bi = 0; bi < blocks; ++bi) {
    double s = 0;
    int64_t end = std::min(n, (bi + 1) * kBlock);
    for (int64_t i = bi * kBlock; i < end; ++i) s += static_cast<double>(x[i]);
    partial[static_cast<std::size_t>(bi)] = s;
  }
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

template <typename T>
void fill(T* y, T value, int64_t n) {
#pragma omp parallel for simd schedule(static) if(parallel_worth(n))
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

#define EAT_INSTANTIATE(T)                                                   \
  template void add_forward<T>(const T*, const T*, T*, int64_t);             \
  template void mul_forward<T>(const T*, const T*, T*, int64_t);             \
  template void mul_backward<T>(const T*, const T*, const T*, T*, T*, int64_t); \
  template void scale_forward<T>(const T*, double, T*, int64_t);             \
  template double sum_forward<T>(const T*, int64_t);                         \
  template void fill<T>(T*, T, int64_t);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
