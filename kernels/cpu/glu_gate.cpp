#include "kernels/cpu/glu_gate.h"
#include "kernels/cpu/parallel.h"

#include <cmath>

namespace eat::cpu {

template <typename T>
void glu_gate_forward(bool silu, const T* a, const T* b, T* y, int64_t n) {
#pragma omp parallel for schedule(static) if(parallel_worth(n))
  for (int64_t i = 0; i < n; ++i) y[i] = (silu ? a[i] / (T(1) + std::exp(-a[i])) : a[i]) * b[i];
}

template <typename T>
void glu_gate_backward(bool silu, const T* a, const T* b, const T* dy, T* da, T* db, int64_t n) {
#pragma omp parallel for schedule(static) if(parallel_worth(n))
  for (int64_t i = 0; i < n; ++i) {
    T act = a[i], dact = T(1);
    if (silu) {
      T s = T(1) / (T(1) + std::exp(-a[i]));
      act = a[i] * s;
      dact = s * (T(1) + a[i] * (T(1) - s));
    }
    if (da) da[i] = dy[i] * b[i] * dact;
    if (db) db[i] = dy[i] * act;
  }
}

template void glu_gate_forward<float>(bool, const float*, const float*, float*, int64_t);
template void glu_gate_forward<double>(bool, const double*, const double*, double*, int64_t);
template void glu_gate_backward<float>(bool, const float*, const float*, const float*, float*, float*, int64_t);
template void glu_gate_backward<double>(bool, const double*, const double*, const double*, double*, double*, int64_t);

}  // namespace eat::cpu
