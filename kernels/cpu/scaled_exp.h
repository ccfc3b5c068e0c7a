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
//
// Below it, the online softmax's steps over one row's band of attended keys, each one masked
// vector pass: the band's largest score, its exponentials and their sum (the forward), and its
// probabilities with their score gradients (the backward).
#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "kernels/cpu/tile_gemm.h"  // Avx512Vec / Avx2Vec: loads, stores, fma, add, sub, mul

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
inline typename V::R exp_of(typename V::R t) {
  t = V::min(V::max(t, V::broadcast(V::kLowest)), V::broadcast(V::kHighest));
  const typename V::R m = V::round(V::mul(t, V::broadcast(kLog2e)));
  const typename V::R r = V::fnma(m, V::broadcast(kLn2Lo), V::fnma(m, V::broadcast(kLn2Hi), t));
  typename V::R p = V::broadcast(kExpPoly[0]);
  for (int c = 1; c < 6; ++c) p = V::fma(p, r, V::broadcast(kExpPoly[c]));
  p = V::fma(p, V::mul(r, r), V::add(r, V::broadcast(1.0f)));
  return V::times_two_to(p, m);
}

template <typename V>
inline void scaled_exp_with(float* x, int64_t n, float scale, float shift) {
  const typename V::R a = V::broadcast(scale), b = V::broadcast(-shift);
  for (int64_t i = 0; i < n; i += V::lanes) V::store(x + i, exp_of<V>(V::fma(V::load(x + i), a, b)));
}

// The whole vectors of [0, n) that hold a lane of the band [lo, hi): [first, end); the others are
// zeroed (a band of a score row: the keys its query attends).
template <typename V>
inline std::pair<int64_t, int64_t> band_vectors(float* x, int64_t n, int64_t lo, int64_t hi) {
  const int64_t first = lo / V::lanes * V::lanes, end = std::min(n, (hi + V::lanes - 1) / V::lanes * V::lanes);
  std::fill(x, x + first, 0.0f);
  std::fill(x + std::max(first, end), x + n, 0.0f);
  return {first, end};
}

// v with its lanes outside the band zeroed, for the vector at element i: only the band's first and
// last vectors have any.
template <typename V>
inline typename V::R in_band(typename V::R v, int64_t i, int64_t lo, int64_t hi) {
  if (i >= lo && i + V::lanes <= hi) return v;
  return V::keep_lanes_or(v, static_cast<int>(lo - i), static_cast<int>(hi - i), V::zero());
}

// x[lo, hi) = exp(scale x - shift), the rest of [0, n) zero; returns the band's sum, added lane by
// lane over its vectors in order and then across the lanes in a fixed order.
template <typename V>
inline float scaled_exp_band_with(float* x, int64_t n, float scale, float shift, int64_t lo, int64_t hi) {
  const auto [first, end] = band_vectors<V>(x, n, lo, hi);
  const typename V::R a = V::broadcast(scale), b = V::broadcast(-shift);
  typename V::R sum = V::zero();
  for (int64_t i = first; i < end; i += V::lanes) {
    const typename V::R e = in_band<V>(exp_of<V>(V::fma(V::load(x + i), a, b)), i, lo, hi);
    V::store(x + i, e);
    sum = V::add(sum, e);
  }
  return V::sum_lanes(sum);
}

// The largest (or smallest) of x[lo, hi), lo < hi.
template <typename V>
inline float band_extreme_with(const float* x, int64_t lo, int64_t hi, bool largest) {
  const float fill = largest ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  typename V::R best = V::broadcast(fill);
  for (int64_t i = lo / V::lanes * V::lanes; i < hi; i += V::lanes) {
    typename V::R v = V::load(x + i);
    if (i < lo || i + V::lanes > hi)
      v = V::keep_lanes_or(v, static_cast<int>(lo - i), static_cast<int>(hi - i), V::broadcast(fill));
    best = largest ? V::max(best, v) : V::min(best, v);
  }
  return largest ? V::max_lanes(best) : V::min_lanes(best);
}

// The backward's probabilities and score gradients of one row: p[lo, hi) = exp(scale p - shift)
// and g[lo, hi) = p (g - d), both zero elsewhere in [0, n).
template <typename V>
inline void band_probabilities_with(float* p, float* g, int64_t n, float scale, float shift, float d, int64_t lo,
                                    int64_t hi) {
  const auto [first, end] = band_vectors<V>(p, n, lo, hi);
  band_vectors<V>(g, n, lo, hi);
  const typename V::R a = V::broadcast(scale), b = V::broadcast(-shift), dv = V::broadcast(d);
  for (int64_t i = first; i < end; i += V::lanes) {
    const typename V::R e = in_band<V>(exp_of<V>(V::fma(V::load(p + i), a, b)), i, lo, hi);
    V::store(p + i, e);
    V::store(g + i, in_band<V>(V::mul(e, V::sub(V::load(g + i), dv)), i, lo, hi));
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
  // Lanes [from, to) of v (from and to may lie outside [0, 8)), the others fill.
  static R keep_lanes_or(R v, int from, int to, R fill) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i keep = _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(to), lane),
                                          _mm256_cmpgt_epi32(lane, _mm256_set1_epi32(from - 1)));
    return _mm256_blendv_ps(fill, v, _mm256_castsi256_ps(keep));
  }
  // f across the lanes in a fixed order: the two halves, then pairs, then the two left.
  template <typename F>
  static float across(R v, F f) {
    const __m128 h = f(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)), q = f(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(f(q, _mm_movehdup_ps(q)));
  }
  static float sum_lanes(R v) { return across(v, [](__m128 a, __m128 b) { return _mm_add_ps(a, b); }); }
  static float max_lanes(R v) { return across(v, [](__m128 a, __m128 b) { return _mm_max_ps(a, b); }); }
  static float min_lanes(R v) { return across(v, [](__m128 a, __m128 b) { return _mm_min_ps(a, b); }); }
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
  // Lanes [from, to) of v (from and to may lie outside [0, 16)), the others fill.
  static __mmask16 below(int k) { return k <= 0 ? 0 : k >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << k) - 1); }
  static R keep_lanes_or(R v, int from, int to, R fill) {
    return _mm512_mask_mov_ps(fill, static_cast<__mmask16>(below(to) & ~below(from)), v);
  }
  static float sum_lanes(R v) { return _mm512_reduce_add_ps(v); }
  static float max_lanes(R v) { return _mm512_reduce_max_ps(v); }
  static float min_lanes(R v) { return _mm512_reduce_min_ps(v); }
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

// A score row's band [lo, hi) of [0, n), n a whole number of vectors and lo < hi, as the
// online softmax meets it. With AVX-512 or AVX2 in f32, one vector pass each, the lanes outside the
// band masked (Eigen's reductions over a band that starts or ends inside a vector go element by
// element there).
//
// The largest of x[lo, hi) (the smallest when !largest).
template <typename T>
inline T band_extreme(const T* x, int64_t lo, int64_t hi, bool largest) {
  const Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> X(x + lo, hi - lo);
  return largest ? X.maxCoeff() : X.minCoeff();
}
// x[lo, hi) = exp(scale x - shift), the rest of x[0, n) zero; returns the sum of x[lo, hi).
template <typename T>
inline T scaled_exp_band(T* x, int64_t n, T scale, T shift, int64_t lo, int64_t hi) {
  scaled_exp(x, n, scale, shift);
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> X(x, n);
  X.head(lo).setZero();
  X.tail(n - hi).setZero();
  return X.segment(lo, hi - lo).sum();
}
// p[lo, hi) = exp(scale p - shift) and g[lo, hi) = p (g - d), both zero elsewhere in [0, n): the
// backward's rebuilt probabilities and score gradients of one row.
template <typename T>
inline void band_probabilities(T* p, T* g, int64_t n, T scale, T shift, T d, int64_t lo, int64_t hi) {
  scaled_exp(p, n, scale, shift);
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> P(p, n), G(g, n);
  G = P * (G - d);
  P.head(lo).setZero();
  P.tail(n - hi).setZero();
  G.head(lo).setZero();
  G.tail(n - hi).setZero();
}

#if defined(EAT_TILE_GEMM)
template <>
inline void scaled_exp<float>(float* x, int64_t n, float scale, float shift) {
  scaled_exp_detail::scaled_exp_with<scaled_exp_detail::Widest>(x, n, scale, shift);
}
template <>
inline float band_extreme<float>(const float* x, int64_t lo, int64_t hi, bool largest) {
  return scaled_exp_detail::band_extreme_with<scaled_exp_detail::Widest>(x, lo, hi, largest);
}
template <>
inline float scaled_exp_band<float>(float* x, int64_t n, float scale, float shift, int64_t lo, int64_t hi) {
  return scaled_exp_detail::scaled_exp_band_with<scaled_exp_detail::Widest>(x, n, scale, shift, lo, hi);
}
template <>
inline void band_probabilities<float>(float* p, float* g, int64_t n, float scale, float shift, float d, int64_t lo,
                                      int64_t hi) {
  scaled_exp_detail::band_probabilities_with<scaled_exp_detail::Widest>(p, g, n, scale, shift, d, lo, hi);
}
#endif

}  // namespace eat::cpu
