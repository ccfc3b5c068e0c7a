#pragma once
// x[0, n) = exp(scale * x[0, n) - shift) in place, n a whole number of vectors: the exponentials
// of softmax attention's score rows (the forward's fold of a key tile, the backward's rebuilt
// probabilities), about a fifth of their instructions with Eigen's exp.
//
// f32 with AVX-512 or AVX2: t = scale x - shift in one rounding (a fused multiply-add), then
// exp(t) = 2^m exp(r), m = round(t / ln 2), r = t - m ln 2 in two steps (ln 2 split into a high
// part exact in f32 and a low part: Cody and Waite), exp(r) on [-ln 2 / 2, ln 2 / 2] by Cephes'
// expf polynomial, and 2^m put in the exponent. About 1 ulp, as Eigen's, with about 60% of its
// instructions (no general ldexp). Every lane runs the same code, so a value's bits do not depend
// on where it lies in the row. f64, and builds without those units, take Eigen's exp of the same t.
#include <Eigen/Core>
#include <cstdint>

#include "kernels/cpu/tile_gemm.h"  // Avx512Vec / Avx2Vec: loads, stores, fma, add, mul

namespace eat::cpu {

namespace scaled_exp_detail {

// exp(r) = 1 + r + r^2 (c0 r^5 + c1 r^4 + ... + c5) on |r| <= ln 2 / 2 (Cephes' expf).
constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                               4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;  // 8 significant bits: m * kLn2Hi is exact for |m| < 2^16
constexpr float kLn2Lo = -2.12194440e-4f;

// The algorithm once, over a vector unit V (tile_gemm.h's, and): fnma (c - a b), min, max, round
// (to nearest), and times_two_to(p, m) = p 2^m, with t clamped to [V::kLowest, V::kHighest] first.
template <typename V>
inline void scaled_exp_with(float* x, int64_t n, float scale, float shift) {
  const typename V::R a = V::broadcast(scale), b = V::broadcast(-shift);
  for (int64_t i = 0; i < n; i += V::lanes) {
    const typename V::R t = V::min(V::max(V::fma(V::load(x + i), a, b), V::broadcast(V::kLowest)), V::broadcast(V::kHighest));
    const typename V::R m = V::round(V::mul(t, V::broadcast(kLog2e)));
    const typename V::R r = V::fnma(m, V::broadcast(kLn2Lo), V::fnma(m, V::broadcast(kLn2Hi), t));
    typename V::R p = V::broadcast(kExpPoly[0]);
    for (int c = 1; c < 6; ++c) p = V::fma(p, r, V::broadcast(kExpPoly[c]));
    p = V::fma(p, V::mul(r, r), V::add(r, V::broadcast(1.0f)));
    V::store(x + i, V::times_two_to(p, m));
  }
}

#if defined(EAT_AVX2_VEC)
// 2^m built in the exponent field, so m must stay a normal exponent: below t = -87 the result is
// about 1.6e-38 instead of 0 or a subnormal, an absolute error of that size beside a row sum of at
// least 1.
struct Avx2 : tile_gemm_detail::Avx2Vec<float> {
  static constexpr float kLowest = -87.0f, kHighest = 88.0f;
  static R fnma(R a, R b, R c) { return _mm256_fnmadd_ps(a, b, c); }
  static R min(R a, R b) { return _mm256_min_ps(a, b); }
  static R max(R a, R b) { return _mm256_max_ps(a, b); }
  static R round(R v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static R times_two_to(R p, R m) {
    const __m256i two_m = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(m), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(two_m));
  }
};
#endif

#if defined(EAT_AVX512_VEC)
// scalef gives the subnormals and zeros itself: t may reach below exp's f32 range.
struct Avx512 : tile_gemm_detail::Avx512Vec<float> {
  static constexpr float kLowest = -104.0f, kHighest = 89.0f;
  static R fnma(R a, R b, R c) { return _mm512_fnmadd_ps(a, b, c); }
  static R min(R a, R b) { return _mm512_min_ps(a, b); }
  static R max(R a, R b) { return _mm512_max_ps(a, b); }
  static R round(R v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static R times_two_to(R p, R m) { return _mm512_scalef_ps(p, m); }
};
#endif

// The widest the build has (an AVX-512 build runs, and tests, the AVX2 one too).
#if defined(EAT_AVX512_VEC)
using Widest = Avx512;
#elif defined(EAT_AVX2_VEC)
using Widest = Avx2;
#endif

}  // namespace scaled_exp_detail

template <typename T>
inline void scaled_exp(T* x, int64_t n, T scale, T shift) {
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> X(x, n);
  X = (X * scale - shift).exp();
}

#if defined(EAT_TILE_GEMM)
template <>
inline void scaled_exp<float>(float* x, int64_t n, float scale, float shift) {
  scaled_exp_detail::scaled_exp_with<scaled_exp_detail::Widest>(x, n, scale, shift);
}
#endif

}  // namespace eat::cpu
