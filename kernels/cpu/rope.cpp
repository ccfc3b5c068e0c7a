#include "kernels/rope.h"
#include "kernels/cpu/parallel.h"

#include <cmath>
#include <vector>

namespace eat::cpu {

template <typename T>
void rope_apply(const T* x, T* y, int64_t B, int64_t T_, int64_t H, int64_t d, double theta, int64_t offset, int64_t chunk,
                bool inverse) {
  const int64_t half = d / 2;
  std::vector<double> freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) freq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(d));
  const double sign = inverse ? -1.0 : 1.0;
#pragma omp parallel for schedule(static) if(parallel_worth(B * T_ * H * d))
  for (int64_t t = 0; t < T_; ++t) {
    std::vector<T> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>((offset + t) / chunk) * freq[i];
      c[i] = static_cast<T>(std::cos(angle));
      s[i] = static_cast<T>(sign * std::sin(angle));
    }
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t base = ((b * T_ + t) * H + h) * d;
        const T* xr = x + base;
        T* yr = y + base;
        for (int64_t i = 0; i < half; ++i) {
          const T x1 = xr[i], x2 = xr[i + half];
          yr[i] = x1 * c[i] - x2 * s[i];
          yr[i + half] = x2 * c[i] + x1 * s[i];
        }
      }
  }
}

template void rope_apply<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t, double, int64_t, int64_t, bool);
template void rope_apply<double>(const double*, double*, int64_t, int64_t, int64_t, int64_t, double, int64_t, int64_t, bool);

}  // namespace eat::cpu
