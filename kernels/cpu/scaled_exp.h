#pragma once
// x[0, n) = exp(scale * x[0, n) - shift) in place, n a whole number of vectors: the exponentials
// of softmax attention's score rows (the forward's fold of a key tile, the backward's rebuilt
// probabilities), about a fifth of their instructions with Eigen's exp.
//
// f32 with AVX-512 or AVX2: t = scale x - shift in one rounding (a fused multiply-add), then
// exp(t) = 2^m exp(r), m = round(t / ln 2), r = t - m ln 2 in two steps (ln 2 split into a high
// part exact in f32 and a low part: Cody and Waite), exp(r) on [-ln 2 / 2, ln 2 / 2] by Cephes'
// expf polynomial, and 2^m put in the exponent (scalef with AVX-512; integer adds with AVX2). t is
// clamped to [-87, 88] with AVX2 (m stays a normal exponent: what lies below comes out as about
// 1.6e-38 instead of 0 or a subnormal, an absolute error of that size beside a row sum of at least
// 1) and to [-104, 89] with AVX-512, where scalef gives the subnormals and zeros itself. About
// 1 ulp, as Eigen's; about 60% of its instructions (no general ldexp). Every lane runs the same code, so a value's
// bits do not depend on where it lies in the row. f64, and builds without those units, take
// Eigen's exp of the same t.
#include <Eigen/Core>
#include <cstdint>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

namespace eat::cpu {

namespace scaled_exp_detail {

// exp(r) = 1 + r + r^2 (c0 r^5 + c1 r^4 + ... + c5) on |r| <= ln 2 / 2 (Cephes' expf).
constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                               4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;  // 8 significant bits: m * kLn2Hi is exact for |m| < 2^16
constexpr float kLn2Lo = -2.12194440e-4f;

}  // namespace scaled_exp_detail

template <typename T>
inline void scaled_exp(T* x, int64_t n, T scale, T shift) {
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> X(x, n);
  X = (X * scale - shift).exp();
}

#if defined(__AVX512F__)
template <>
inline void scaled_exp<float>(float* x, int64_t n, float scale, float shift) {
  using namespace scaled_exp_detail;
  const __m512 a = _mm512_set1_ps(scale), b = _mm512_set1_ps(-shift);
  for (int64_t i = 0; i < n; i += 16) {
    __m512 t = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), a, b);
    t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
    const __m512 m = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(m, _mm512_set1_ps(kLn2Hi), t);
    r = _mm512_fnmadd_ps(m, _mm512_set1_ps(kLn2Lo), r);
    __m512 p = _mm512_set1_ps(kExpPoly[0]);
    for (int c = 1; c < 6; ++c) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpPoly[c]));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    _mm512_storeu_ps(x + i, _mm512_scalef_ps(p, m));
  }
}
#elif defined(__AVX2__) && defined(__FMA__)
template <>
inline void scaled_exp<float>(float* x, int64_t n, float scale, float shift) {
  using namespace scaled_exp_detail;
  const __m256 a = _mm256_set1_ps(scale), b = _mm256_set1_ps(-shift);
  for (int64_t i = 0; i < n; i += 8) {
    __m256 t = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), a, b);
    t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    const __m256 m = _mm256_round_ps(_mm256_mul_ps(t, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(m, _mm256_set1_ps(kLn2Hi), t);
    r = _mm256_fnmadd_ps(m, _mm256_set1_ps(kLn2Lo), r);
    __m256 p = _mm256_set1_ps(kExpPoly[0]);
    for (int c = 1; c < 6; ++c) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpPoly[c]));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i two_m = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(m), _mm256_set1_epi32(127)), 23);
    _mm256_storeu_ps(x + i, _mm256_mul_ps(p, _mm256_castsi256_ps(two_m)));
  }
}
#endif

}  // namespace eat::cpu
