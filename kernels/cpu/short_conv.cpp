#include "kernels/short_conv.h"
#include "kernels/cpu/parallel.h"

#include <algorithm>

namespace eat::cpu {

template <typename T>
void short_conv_forward(const T* x, const T* w, const T* bias, T* y, int64_t B, int64_t T_, int64_t C, int64_t k) {
#pragma omp parallel for collapse(2) schedule(static) if(parallel_worth(B * T_ * C * k))
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T_; ++t) {
      T* yr = y + (b * T_ + t) * C;
      for (int64_t c = 0; c < C; ++c) yr[c] = bias ? bias[c] : T(0);
      for (int64_t i = std::max<int64_t>(0, k - 1 - t); i < k; ++i) {
        const T* xr = x + (b * T_ + t - k + 1 + i) * C;
        for (int64_t c = 0; c < C; ++c) yr[c] += w[c * k + i] * xr[c];
      }
    }
}

template <typename T>
void short_conv_backward(const T* x, const T* w, const T* dy, T* dx, T* dw, T* dbias, int64_t B, int64_t T_, int64_t C,
                         int64_t k) {
  if (dx) {
    // dx[s] = sum_i w[i] dy[s + k - 1 - i] for s + k - 1 - i < T.
#pragma omp parallel for collapse(2) schedule(static) if(parallel_worth(B * T_ * C * k))
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = 0; s < T_; ++s) {
        T* dr = dx + (b * T_ + s) * C;
        for (int64_t c = 0; c < C; ++c) dr[c] = T(0);
        for (int64_t i = 0; i < k; ++i) {
          const int64_t t = s + k - 1 - i;
          if (t >= T_) continue;
          const T* gr = dy + (b * T_ + t) * C;
          for (int64_t c = 0; c < C; ++c) dr[c] += w[c * k + i] * gr[c];
        }
      }
  }
  if (dw || dbias) {
    constexpr int64_t kChannels = 16;
    const int64_t blocks = (C + kChannels - 1) / kChannels;
#pragma omp parallel for schedule(static) if(parallel_worth(B * T_ * C * k))
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t c0 = blk * kChannels, c1 = std::min(C, c0 + kChannels);
      for (int64_t c = c0; c < c1; ++c) {
        if (dbias) dbias[c] = T(0);
        if (dw)
          for (int64_t i = 0; i < k; ++i) dw[c * k + i] = T(0);
      }
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T_; ++t) {
          const T* gr = dy + (b * T_ + t) * C;
          for (int64_t c = c0; c < c1; ++c) {
            if (dbias) dbias[c] += gr[c];
            if (dw)
              for (int64_t i = std::max<int64_t>(0, k - 1 - t); i < k; ++i)
                dw[c * k + i] += gr[c] * x[(b * T_ + t - k + 1 + i) * C + c];
          }
        }
    }
  }
}

#define EAT_INSTANTIATE(T)                                                                                       \
  template void short_conv_forward<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int64_t, int64_t);    \
  template void short_conv_backward<T>(const T*, const T*, const T*, T*, T*, T*, int64_t, int64_t, int64_t, int64_t);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
