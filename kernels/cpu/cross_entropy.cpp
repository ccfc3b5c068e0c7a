#include "kernels/cross_entropy.h"
#include "kernels/cpu/parallel.h"

#include <cmath>
#include <vector>

namespace eat::cpu {

template <typename T>
double cross_entropy_forward(const T* logits, const int64_t* targets, double* lse, int64_t N, int64_t V,
                             int64_t ignore_index, int64_t* count) {
  std::vector<double> row_loss(static_cast<size_t>(N));
#pragma omp parallel for schedule(static) if(parallel_worth(N * V))
  for (int64_t i = 0; i < N; ++i) {
    const T* r = logits + i * V;
    double m = -INFINITY;
    for (int64_t j = 0; j < V; ++j) m = std::max(m, static_cast<double>(r[j]));
    double s = 0;
    for (int64_t j = 0; j < V; ++j) s += std::exp(static_cast<double>(r[j]) - m);
    lse[i] = m + std::log(s);
    row_loss[i] = targets[i] == ignore_index ? 0.0 : lse[i] - static_cast<double>(r[targets[i]]);
  }
  double total = 0;  // row order: independent of the thread count
  int64_t n = 0;
  for (int64_t i = 0; i < N; ++i) {
    total += row_loss[i];
    n += targets[i] != ignore_index;
  }
  *count = n;
  return total;
}

template <typename T>
void cross_entropy_backward(const T* logits, const int64_t* targets, const double* lse, double scale, T* dlogits, int64_t N,
                            int64_t V, int64_t ignore_index) {
#pragma omp parallel for schedule(static) if(parallel_worth(N * V))
  for (int64_t i = 0; i < N; ++i) {
    T* d = dlogits + i * V;
    if (targets[i] == ignore_index) {
      for (int64_t j = 0; j < V; ++j) d[j] = T(0);
      continue;
    }
    const T* r = logits + i * V;
    for (int64_t j = 0; j < V; ++j) d[j] = static_cast<T>(std::exp(static_cast<double>(r[j]) - lse[i]) * scale);
    d[targets[i]] -= static_cast<T>(scale);
  }
}

template double cross_entropy_forward<float>(const float*, const int64_t*, double*, int64_t, int64_t, int64_t, int64_t*);
template double cross_entropy_forward<double>(const double*, const int64_t*, double*, int64_t, int64_t, int64_t, int64_t*);
template void cross_entropy_backward<float>(const float*, const int64_t*, const double*, double, float*, int64_t, int64_t, int64_t);
template void cross_entropy_backward<double>(const double*, const int64_t*, const double*, double, double*, int64_t, int64_t,
                                             int64_t);

}  // namespace eat::cpu
