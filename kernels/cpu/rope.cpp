#include "kernels/rope.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/rope_rows.h"

#include <cmath>
#include <vector>

namespace eat::cpu {

namespace {

// One head's rotation; the inverse negates sin (exactly). y may be x: pair i is read and then
// written by its own iteration alone, so the loop is vectorised regardless (a compiler's own
// overlap test would send an in-place call to its scalar fallback).
template <bool kInverse, typename T>
void rotate(const T* x, T* y, const T* c, const T* s, int64_t half) {
#pragma omp simd
  for (int64_t i = 0; i < half; ++i) {
    const T x1 = x[i], x2 = x[i + half], si = kInverse ? -s[i] : s[i];
    y[i] = x1 * c[i] - x2 * si;
    y[i + half] = x2 * c[i] + x1 * si;
  }
}

}  // namespace

// cos and sin of every angle, rounded to T. They depend only on the positions and the
// frequencies, not on the batch or the heads, so one table serves every call at the same
// positions: the q and k of every layer, forward and backward. Its 2 T_ d/2 libm calls cost more
// than the rotation of a small batch itself, so the last table built is kept (one per thread and
// type; no larger than an input of one sequence and one head pair).
template <typename T>
const RopeAngles<T>& rope_angles(int64_t T_, int64_t d, double theta, int64_t offset, int64_t chunk) {
  static thread_local RopeAngles<T> last;
  RopeAngles<T>& table = last;  // the caller's: inside the parallel region `last` would name each thread's own
  if (table.T_ == T_ && table.d == d && table.theta == theta && table.offset == offset && table.chunk == chunk)
    return table;
  const int64_t half = d / 2;
  std::vector<double> freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) freq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(d));
  table.cos.resize(static_cast<size_t>(T_ * half));
  table.sin.resize(static_cast<size_t>(T_ * half));
#pragma omp parallel for schedule(static) if(parallel_worth(T_ * half * 16))
  for (int64_t t = 0; t < T_; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>((offset + t) / chunk) * freq[i];
      table.cos[t * half + i] = static_cast<T>(std::cos(angle));
      table.sin[t * half + i] = static_cast<T>(std::sin(angle));
    }
  table.T_ = T_;
  table.d = d;
  table.theta = theta;
  table.offset = offset;
  table.chunk = chunk;
  return table;
}

template <typename T>
void rope_rows(const RopeAngles<T>& angles, const T* x, T* y, int64_t row0, int64_t rows, int64_t H, bool inverse) {
  const int64_t d = angles.d, half = d / 2;
  for (int64_t r = row0; r < row0 + rows; ++r) {
    const int64_t t = r % angles.T_;
    const T *c = angles.cos.data() + t * half, *s = angles.sin.data() + t * half;
    for (int64_t h = 0; h < H; ++h) {
      const int64_t base = (r * H + h) * d;
      if (inverse)
        rotate<true>(x + base, y + base, c, s, half);
      else
        rotate<false>(x + base, y + base, c, s, half);
    }
  }
}

template <typename T>
void rope_apply(const T* x, T* y, int64_t B, int64_t T_, int64_t H, int64_t d, double theta, int64_t offset, int64_t chunk,
                bool inverse) {
  const int64_t half = d / 2;
  const RopeAngles<T>& table = rope_angles<T>(T_, d, theta, offset, chunk);
#pragma omp parallel for schedule(static) if(parallel_worth(B * T_ * H * d))
  for (int64_t t = 0; t < T_; ++t) {
    const T *c = table.cos.data() + t * half, *s = table.sin.data() + t * half;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t base = ((b * T_ + t) * H + h) * d;
        if (inverse)
          rotate<true>(x + base, y + base, c, s, half);
        else
          rotate<false>(x + base, y + base, c, s, half);
      }
  }
}

#define EAT_INSTANTIATE_ROWS(T)                                                                           \
  template const RopeAngles<T>& rope_angles<T>(int64_t, int64_t, double, int64_t, int64_t);               \
  template void rope_rows<T>(const RopeAngles<T>&, const T*, T*, int64_t, int64_t, int64_t, bool);
EAT_INSTANTIATE_ROWS(float)
EAT_INSTANTIATE_ROWS(double)

template void rope_apply<float>(const float*, float*, int64_t, int64_t, int64_t, int64_t, double, int64_t, int64_t, bool);
template void rope_apply<double>(const double*, double*, int64_t, int64_t, int64_t, int64_t, double, int64_t, int64_t, bool);

}  // namespace eat::cpu
