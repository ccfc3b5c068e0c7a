#pragma once
// Small products of attention-sized tiles (a few dozen rows and columns, inner sizes up to a few
// hundred) computed straight from the operands in place, in registers, with no packing. A general
// GEMM (Eigen's) copies both operands into packed panels on every call; at these sizes, one tile
// pair after another, the copies took about a third of softmax attention's time on the CPU.
//
//   C (m x n) = or += op(A) (m x k) B (k x n), op(A) = A or A^T, all row-major with row strides.
//
// Each element of C is one sum over p = 0, 1, ..., k - 1 in that order, from zero, then added to
// C: an element's bits depend on its operands alone, not on m, n, where it lies in C or how a
// caller splits a product, so two schedules of the same sums agree bit for bit. With AVX-512 or
// AVX2 the sums are fused multiply-adds in registers; elsewhere plain loops with the same order.
#include <algorithm>
#include <cstdint>
#include <vector>
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define EAT_TILE_GEMM 1
#include <immintrin.h>
#endif

namespace eat::cpu {

namespace tile_gemm_detail {

#ifdef EAT_TILE_GEMM
template <typename T>
struct Vec;  // one SIMD register of T: load (all or the first n lanes), store, broadcast, fma

#if defined(__AVX512F__)
template <>
struct Vec<float> {
  using R = __m512;
  static constexpr int lanes = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static R load(const float* p, int n) { return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p); }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static void store(float* p, R v, int n) { _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v); }
  static R broadcast(float x) { return _mm512_set1_ps(x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
};
template <>
struct Vec<double> {
  using R = __m512d;
  static constexpr int lanes = 8;
  static R zero() { return _mm512_setzero_pd(); }
  static R load(const double* p) { return _mm512_loadu_pd(p); }
  static R load(const double* p, int n) { return _mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << n) - 1), p); }
  static void store(double* p, R v) { _mm512_storeu_pd(p, v); }
  static void store(double* p, R v, int n) { _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1), v); }
  static R broadcast(double x) { return _mm512_set1_pd(x); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
  static R add(R a, R b) { return _mm512_add_pd(a, b); }
};
// Vectors across one block of C: 6 rows of accumulators, a row of B and a broadcast of A in 32 registers.
inline constexpr int kBlockVectors = 4;
#else
template <>
struct Vec<float> {
  using R = __m256;
  static constexpr int lanes = 8;
  static __m256i first(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
  static R zero() { return _mm256_setzero_ps(); }
  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static R load(const float* p, int n) { return _mm256_maskload_ps(p, first(n)); }
  static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  static void store(float* p, R v, int n) { _mm256_maskstore_ps(p, first(n), v); }
  static R broadcast(float x) { return _mm256_set1_ps(x); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
};
template <>
struct Vec<double> {
  using R = __m256d;
  static constexpr int lanes = 4;
  static __m256i first(int n) { return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3)); }
  static R zero() { return _mm256_setzero_pd(); }
  static R load(const double* p) { return _mm256_loadu_pd(p); }
  static R load(const double* p, int n) { return _mm256_maskload_pd(p, first(n)); }
  static void store(double* p, R v) { _mm256_storeu_pd(p, v); }
  static void store(double* p, R v, int n) { _mm256_maskstore_pd(p, first(n), v); }
  static R broadcast(double x) { return _mm256_set1_pd(x); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
  static R add(R a, R b) { return _mm256_add_pd(a, b); }
};
// Vectors across one block of C: 6 rows of accumulators, a row of B and a broadcast of A in 16 registers.
inline constexpr int kBlockVectors = 2;
#endif

// Rows [i0, i0 + MR) and NV vectors of columns from j0 of C, the last vector `last` lanes wide:
// MR x NV accumulators stay in registers through the whole inner loop.
template <typename T, int MR, int NV, bool TransA, bool Partial>
inline void block(const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc, int64_t i0, int64_t j0,
                  int64_t k, bool accumulate, int last) {
  using V = Vec<T>;
  auto load = [&](const T* p, int v) { return Partial && v == NV - 1 ? V::load(p, last) : V::load(p); };
  typename V::R acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
  for (int64_t p = 0; p < k; ++p) {
    typename V::R bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = load(b + p * ldb + j0 + v * V::lanes, v);
    for (int r = 0; r < MR; ++r) {
      const typename V::R av = V::broadcast(TransA ? a[p * lda + i0 + r] : a[(i0 + r) * lda + p]);
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(av, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) {
      T* out = c + (i0 + r) * ldc + j0 + v * V::lanes;
      const typename V::R sum = accumulate ? V::add(load(out, v), acc[r][v]) : acc[r][v];
      if (Partial && v == NV - 1) V::store(out, sum, last); else V::store(out, sum);
    }
}

// Every row of C for NV vectors of columns from j0: blocks of 6 rows, then one block of the rest
// (a 64-row tile is ten blocks of 6 and one of 4).
template <typename T, int NV, bool TransA, bool Partial>
inline void column_panel(const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc, int64_t m, int64_t j0,
                         int64_t k, bool accumulate, int last) {
  constexpr int MR = 6;
  int64_t i = 0;
  for (; i + MR <= m; i += MR) block<T, MR, NV, TransA, Partial>(a, lda, b, ldb, c, ldc, i, j0, k, accumulate, last);
  switch (m - i) {
    case 5: block<T, 5, NV, TransA, Partial>(a, lda, b, ldb, c, ldc, i, j0, k, accumulate, last); break;
    case 4: block<T, 4, NV, TransA, Partial>(a, lda, b, ldb, c, ldc, i, j0, k, accumulate, last); break;
    case 3: block<T, 3, NV, TransA, Partial>(a, lda, b, ldb, c, ldc, i, j0, k, accumulate, last); break;
    case 2: block<T, 2, NV, TransA, Partial>(a, lda, b, ldb, c, ldc, i, j0, k, accumulate, last); break;
    case 1: block<T, 1, NV, TransA, Partial>(a, lda, b, ldb, c, ldc, i, j0, k, accumulate, last); break;
    default: break;
  }
}

// All of C: kBlockVectors vectors across at a time (a 64-wide f32 head in one go with AVX-512),
// then the whole vectors left, then a last, partial one.
template <typename T, bool TransA>
void product(const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc, int64_t m, int64_t n, int64_t k,
             bool accumulate) {
  constexpr int64_t W = Vec<T>::lanes;
  int64_t j = 0;
  for (; j + kBlockVectors * W <= n; j += kBlockVectors * W)
    column_panel<T, kBlockVectors, TransA, false>(a, lda, b, ldb, c, ldc, m, j, k, accumulate, W);
  for (; j + W <= n; j += W) column_panel<T, 1, TransA, false>(a, lda, b, ldb, c, ldc, m, j, k, accumulate, W);
  if (j < n) column_panel<T, 1, TransA, true>(a, lda, b, ldb, c, ldc, m, j, k, accumulate, static_cast<int>(n - j));
}
#else
// Without the vector units above: the same sums, one output row at a time.
template <typename T, bool TransA>
void product(const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc, int64_t m, int64_t n, int64_t k,
             bool accumulate) {
  std::vector<T> row(static_cast<size_t>(n));
  for (int64_t i = 0; i < m; ++i) {
    std::fill(row.begin(), row.end(), T(0));
    for (int64_t p = 0; p < k; ++p) {
      const T x = TransA ? a[p * lda + i] : a[i * lda + p];
      for (int64_t j = 0; j < n; ++j) row[j] += x * b[p * ldb + j];
    }
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + row[j] : row[j];
  }
}
#endif

}  // namespace tile_gemm_detail

// C = op(A) B, or C += op(A) B when accumulate; op(A) = A^T when trans_a (A stored k x m).
template <typename T>
void tile_gemm(bool trans_a, const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc, int64_t m, int64_t n,
               int64_t k, bool accumulate) {
  if (trans_a)
    tile_gemm_detail::product<T, true>(a, lda, b, ldb, c, ldc, m, n, k, accumulate);
  else
    tile_gemm_detail::product<T, false>(a, lda, b, ldb, c, ldc, m, n, k, accumulate);
}

}  // namespace eat::cpu
