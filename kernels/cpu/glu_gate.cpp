#include "kernels/glu_gate.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/sigmoid_block.h"

#include <cmath>

namespace eat::cpu {

template <typename T>
void glu_gate_forward(bool silu, const T* a, const T* b, T* y, int64_t n) {
  if (!silu) {
#pragma omp parallel for schedule(static) if(parallel_worth(n))
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
    return;
  }
  for_pointwise_blocks(n, [&](int64_t i0, int64_t len) {
    T s[kPointwiseBlock];
    sigmoid_block(a + i0, s, len);
    for (int64_t i = 0; i < len; ++i) y[i0 + i] = (a[i0 + i] * s[i]) * b[i0 + i];
  });
}

template <typename T>
void glu_gate_backward(bool silu, const T* a, const T* b, const T* dy, T* da, T* db, int64_t n) {
  for_pointwise_blocks(n, [&](int64_t i0, int64_t len) {
    T s[kPointwiseBlock];
    if (silu) sigmoid_block(a + i0, s, len);
    for (int64_t i = 0; i < len; ++i) {
      const int64_t k = i0 + i;
      const T act = silu ? a[k] * s[i] : a[k];
      const T dact = silu ? silu_slope(a[k], s[i]) : T(1);
      if (da) da[k] = dy[k] * b[k] * dact;
      if (db) db[k] = dy[k] * act;
    }
  });
}

template void glu_gate_forward<float>(bool, const float*, const float*, float*, int64_t);
template void glu_gate_forward<double>(bool, const double*, const double*, double*, int64_t);
template void glu_gate_backward<float>(bool, const float*, const float*, const float*, float*, float*, int64_t);
template void glu_gate_backward<double>(bool, const double*, const double*, const double*, double*, double*, int64_t);

}  // namespace eat::cpu
