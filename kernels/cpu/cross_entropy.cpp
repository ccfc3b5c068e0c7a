#include "kernels/cross_entropy.h"
#include "kernels/cpu/array_map.h"
#include "kernels/cpu/parallel.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace eat::cpu {

namespace {

// Logits per block: a block's exponentials stay in L1.
constexpr int64_t kBlock = 1024;

// e[j] = exp(x[j] - shift) for j < n <= kBlock, in double (e aligned to 64 bytes, so every
// element takes Eigen's vector exp whatever stack it lies on; see sigmoid_block.h). The widening is a loop of its own and
// the exp an array expression on doubles: Eigen vectorises exp (std::exp in a loop is a scalar
// libm call per logit, the bulk of this op's time) but not the cast from float inside one.
template <typename T>
void shifted_exp(const T* x, int64_t n, double shift, double* e) {
  for (int64_t j = 0; j < n; ++j) e[j] = static_cast<double>(x[j]) - shift;
  ArrayMap<double> E(e, n);
  E = E.exp();
}

// sum_j exp(x[j] - shift) over eight running sums combined in a fixed order: the adds
// vectorise, and the result does not depend on the threads.
template <typename T>
double sum_shifted_exp(const T* x, int64_t n, double shift) {
  alignas(64) double e[kBlock];
  double acc[8] = {};
  double tail = 0;
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const int64_t len = std::min(kBlock, n - j0);
    shifted_exp(x + j0, len, shift, e);
    int64_t j = 0;
    for (; j + 8 <= len; j += 8)
      for (int k = 0; k < 8; ++k) acc[k] += e[j + k];
    for (; j < len; ++j) tail += e[j];
  }
  return (((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))) + tail;
}

}  // namespace

template <typename T>
double cross_entropy_forward(const T* logits, const int64_t* targets, double* lse, int64_t N, int64_t V,
                             int64_t ignore_index, int64_t* count) {
  std::vector<double> row_loss(static_cast<size_t>(N));
#pragma omp parallel for schedule(static) if(parallel_worth(N * V))
  for (int64_t i = 0; i < N; ++i) {
    const T* r = logits + i * V;
    const double m = static_cast<double>(ConstArrayMap<T>(r, V).maxCoeff());
    lse[i] = m + std::log(sum_shifted_exp(r, V, m));
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
      std::fill(d, d + V, T(0));
      continue;
    }
    alignas(64) double e[kBlock];
    for (int64_t j0 = 0; j0 < V; j0 += kBlock) {
      const int64_t len = std::min(kBlock, V - j0);
      shifted_exp(logits + i * V + j0, len, lse[i], e);
      for (int64_t j = 0; j < len; ++j) d[j0 + j] = static_cast<T>(e[j] * scale);
    }
    d[targets[i]] -= static_cast<T>(scale);
  }
}

template double cross_entropy_forward<float>(const float*, const int64_t*, double*, int64_t, int64_t, int64_t, int64_t*);
template double cross_entropy_forward<double>(const double*, const int64_t*, double*, int64_t, int64_t, int64_t, int64_t*);
template void cross_entropy_backward<float>(const float*, const int64_t*, const double*, double, float*, int64_t, int64_t, int64_t);
template void cross_entropy_backward<double>(const double*, const int64_t*, const double*, double, double*, int64_t, int64_t,
                                             int64_t);

}  // namespace eat::cpu
