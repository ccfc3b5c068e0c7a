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
//
// Below tile_gemm: the register tiles it is made of (RegisterTile, for_each_tile), for kernels
// that sum several products into one output tile and scale or mask it before the store, and a
// transpose.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#define EAT_TILE_GEMM 1
#include <immintrin.h>
#endif

namespace eat::cpu {

namespace tile_gemm_detail {

#ifdef EAT_TILE_GEMM
// One SIMD register of T (load all or the first n lanes, store, broadcast, fma, add, sub, mul) for each
// instruction set the build has; Vec is the widest. Both are named so that code may also run,
// and be tested, on the narrower one (packed_gemm.cpp).
#if defined(__AVX2__) && defined(__FMA__)
#define EAT_AVX2_VEC 1
template <typename T>
struct Avx2Vec;
template <>
struct Avx2Vec<float> {
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
  static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
};
template <>
struct Avx2Vec<double> {
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
  static R sub(R a, R b) { return _mm256_sub_pd(a, b); }
  static R mul(R a, R b) { return _mm256_mul_pd(a, b); }
};
#endif

#if defined(__AVX512F__)
#define EAT_AVX512_VEC 1
template <typename T>
struct Avx512Vec;
template <>
struct Avx512Vec<float> {
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
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
};
template <>
struct Avx512Vec<double> {
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
  static R sub(R a, R b) { return _mm512_sub_pd(a, b); }
  static R mul(R a, R b) { return _mm512_mul_pd(a, b); }
};
template <typename T>
using Vec = Avx512Vec<T>;
// Vectors across one block of C: 6 rows of accumulators, a row of B and a broadcast of A in 32 registers.
inline constexpr int kBlockVectors = 4;
#else
template <typename T>
using Vec = Avx2Vec<T>;
// Vectors across one block of C: 6 rows of accumulators, a row of B and a broadcast of A in 16 registers.
inline constexpr int kBlockVectors = 2;
#endif

#else
// Without the vector units above: "vectors" of one element, the same sums in the same order.
template <typename T>
struct Vec {
  using R = T;
  static constexpr int lanes = 1;
  static R zero() { return T(0); }
  static R load(const T* p) { return *p; }
  static R load(const T* p, int n) { return n > 0 ? *p : T(0); }
  static void store(T* p, R v) { *p = v; }
  static void store(T* p, R v, int n) {
    if (n > 0) *p = v;
  }
  static R broadcast(T x) { return x; }
  static R fma(R a, R b, R c) { return a * b + c; }
  static R add(R a, R b) { return a + b; }
  static R sub(R a, R b) { return a - b; }
  static R mul(R a, R b) { return a * b; }
};
inline constexpr int kBlockVectors = 4;
#endif

// A register tile's accumulators stay in registers only while its calls are inlined into the
// caller's loop; a call left out of line (GCC gives up when a kernel instantiates many tile
// shapes) reads and writes them through memory on every step, and runs 2-3x slower.
#define EAT_TILE_INLINE inline __attribute__((always_inline))

// The accumulators of MR rows and NV vectors of columns of C (the last vector `last` lanes wide
// when Partial), kept in registers while products are summed into them. Beside tile_gemm's plain
// products, kernels with several products per output tile (chunked linear attention) sum them
// here and scale or mask the sums before one store (see for_each_tile).
template <typename T, int MR, int NV, bool Partial>
struct RegisterTile {
  using V = Vec<T>;
  typename V::R acc[MR][NV];
  int last;

  EAT_TILE_INLINE explicit RegisterTile(int last_lanes) : last(last_lanes) {
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
  }
  EAT_TILE_INLINE typename V::R load(const T* p, int v) const { return Partial && v == NV - 1 ? V::load(p, last) : V::load(p); }

  // acc(r, :) += sum over p in [p0, p1) of op(A)(r, p) B(p, :), in that order: a at op(A)'s first
  // row of the tile (A(r, p) = a[r * lda + p], or a[p * lda + r] when TransA), b at the tile's
  // first column of B.
  template <bool TransA>
  EAT_TILE_INLINE void mac(const T* a, int64_t lda, const T* b, int64_t ldb, int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      typename V::R bv[NV];
      for (int v = 0; v < NV; ++v) bv[v] = load(b + p * ldb + v * V::lanes, v);
      for (int r = 0; r < MR; ++r) {
        const typename V::R av = V::broadcast(TransA ? a[p * lda + r] : a[r * lda + p]);
        for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(av, bv[v], acc[r][v]);
      }
    }
  }
  // acc(r, :) *= f[r].
  EAT_TILE_INLINE void scale_rows(const T* f) {
    for (int r = 0; r < MR; ++r) {
      const typename V::R x = V::broadcast(f[r]);
      for (int v = 0; v < NV; ++v) acc[r][v] = V::mul(acc[r][v], x);
    }
  }
  // acc(r, :) *= m[r * ldm ..] element by element (ldm may be negative).
  EAT_TILE_INLINE void mul(const T* m, int64_t ldm) {
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = V::mul(acc[r][v], load(m + r * ldm + v * V::lanes, v));
  }
  // C's tile (c at its first element) = acc, or += acc when accumulate.
  EAT_TILE_INLINE void store(T* c, int64_t ldc, bool accumulate) const {
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < NV; ++v) {
        T* out = c + r * ldc + v * V::lanes;
        const typename V::R sum = accumulate ? V::add(load(out, v), acc[r][v]) : acc[r][v];
        if (Partial && v == NV - 1) V::store(out, sum, last); else V::store(out, sum);
      }
  }
};

template <int MR, int NV, bool Partial, typename F>
void call_tile(F& f, int64_t i0, int64_t j0, int last) {
  f.template operator()<MR, NV, Partial>(i0, j0, last);
}
template <int MR, typename F>
void call_tile_columns(F& f, int64_t i0, int64_t j0, int nv, bool partial, int last) {
  static_assert(kBlockVectors == 2 || kBlockVectors == 4);
  auto with = [&]<int NV>() {
    if (partial) call_tile<MR, NV, true>(f, i0, j0, last); else call_tile<MR, NV, false>(f, i0, j0, last);
  };
  switch (nv) {
    case 1: with.template operator()<1>(); break;
    case 2: with.template operator()<2>(); break;
    case 3: if constexpr (kBlockVectors > 2) with.template operator()<3>(); break;
    default: if constexpr (kBlockVectors > 2) with.template operator()<4>(); break;
  }
}

}  // namespace tile_gemm_detail

using tile_gemm_detail::RegisterTile;

// Elements of T per vector register.
template <typename T>
inline constexpr int64_t kTileLanes = tile_gemm_detail::Vec<T>::lanes;

// Rows of C per register tile (the last tile of a walk may have fewer).
inline constexpr int kTileRows = 6;

// Columns of padding for a buffer of rows that tile products read: a row pitch of a power of two
// bytes, or of a multiple of a kilobyte (a head's rows in a [B, T, H, d] tensor in most models),
// puts the rows a product reads in a few cache sets, 1.15-1.2x slower measured.
inline constexpr int64_t kPitchPad = 16;

namespace tile_gemm_detail {
// call_tile_columns<rows>, rows in [1, R] known at run time.
template <int R, typename F>
void call_tile_rows(F& f, int rows, int64_t i0, int64_t j0, int nv, bool partial, int last) {
  if constexpr (R > 1)
    if (rows < R) return call_tile_rows<R - 1>(f, rows, i0, j0, nv, partial, last);
  call_tile_columns<R>(f, i0, j0, nv, partial, last);
}
}  // namespace tile_gemm_detail

// Walks the rows [0, m) of a C in blocks of kTileRows (the last block the rest) and, within the
// block from row i0, the columns [0, n_of(i0)) in tiles of up to kBlockVectors vectors, the last
// vector partial: calls f.template operator()<R, NV, Partial>(i0, j0, last) for each tile, R its
// rows, NV its vectors, `last` the lanes of its last vector.
template <typename T, typename Columns, typename F>
void for_each_tile(int64_t m, Columns&& n_of, F&& f) {
  using namespace tile_gemm_detail;
  constexpr int MR = kTileRows;
  constexpr int64_t W = Vec<T>::lanes, panel = kBlockVectors * W;
  for (int64_t i0 = 0; i0 < m; i0 += MR) {
    const int64_t n = n_of(i0);
    const int rows = static_cast<int>(std::min<int64_t>(MR, m - i0));
    for (int64_t j0 = 0; j0 < n; j0 += panel) {
      const int64_t cols = std::min(panel, n - j0);
      const int nv = static_cast<int>((cols + W - 1) / W), last = static_cast<int>(cols - (nv - 1) * W);
      call_tile_rows<MR>(f, rows, i0, j0, nv, last < W, last);
    }
  }
}

namespace tile_gemm_detail {
// A square block of lanes x lanes elements transposed in registers: log2(lanes) rounds, each
// swapping the off-diagonal halves of every sub-block (GCC/Clang vector extensions; one
// two-source permute per row and round).
template <typename T>
struct SquareTranspose {
  static constexpr int N = Vec<T>::lanes;
  using Index = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  typedef T Row __attribute__((vector_size(N * sizeof(T))));
  typedef Index Mask __attribute__((vector_size(N * sizeof(T))));

  // Rows i and i + H with (i & H) == 0: the first keeps its columns j with (j & H) == 0 and takes
  // the second's j - H for the others; the second takes the first's j + H and keeps the rest.
  template <int H>
  static void round(Row* rows) {
    Mask low, high;
    for (int j = 0; j < N; ++j) {
      low[j] = (j & H) == 0 ? j : j - H + N;
      high[j] = (j & H) == 0 ? j + H : j + N;
    }
    for (int i = 0; i < N; ++i)
      if ((i & H) == 0) {
        const Row a = rows[i], b = rows[i + H];
        rows[i] = __builtin_shuffle(a, b, low);
        rows[i + H] = __builtin_shuffle(a, b, high);
      }
    if constexpr (H > 1) round<H / 2>(rows);
  }

  static void run(const T* src, int64_t lds, T* dst, int64_t ldd) {
    Row rows[N];
    for (int i = 0; i < N; ++i) std::memcpy(&rows[i], src + i * lds, sizeof(Row));
    round<N / 2>(rows);
    for (int i = 0; i < N; ++i) std::memcpy(dst + i * ldd, &rows[i], sizeof(Row));
  }
};
}  // namespace tile_gemm_detail

// dst (cols x rows, row pitch ldd) = the transpose of src (rows x cols, pitch lds): square blocks
// of one vector's lanes through registers, the ragged edges element by element.
template <typename T>
void transpose(const T* src, int64_t lds, int64_t rows, int64_t cols, T* dst, int64_t ldd) {
  constexpr int64_t W = tile_gemm_detail::Vec<T>::lanes;
  int64_t rows_w = 0, cols_w = 0;
  if constexpr (W > 1) {
    rows_w = rows / W * W;
    cols_w = cols / W * W;
    for (int64_t r0 = 0; r0 < rows_w; r0 += W)
      for (int64_t c0 = 0; c0 < cols_w; c0 += W)
        tile_gemm_detail::SquareTranspose<T>::run(src + r0 * lds + c0, lds, dst + c0 * ldd + r0, ldd);
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = r < rows_w ? cols_w : 0; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
}

// tile_gemm over a band of a product (a causal tile's lower triangle): the block of kTileRows rows
// of C from row i0 is computed in its columns [0, n_of(i0)) only, over the inner range
// [p0, p1) = inner_of(i0) only (a std::pair). The columns past n_of(i0) are left as they were; the
// inner steps outside [p0, p1) are taken to be products with zeros, so leaving them out changes
// no bit of a finite sum (an element's sum still starts from zero and runs in order).
template <typename T, typename Columns, typename Inner>
void tile_gemm_banded(bool trans_a, const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc, int64_t m,
                      Columns&& n_of, Inner&& inner_of, bool accumulate) {
  for_each_tile<T>(m, n_of, [&]<int MR, int NV, bool Partial>(int64_t i0, int64_t j0, int last) {
    const auto [p0, p1] = inner_of(i0);
    RegisterTile<T, MR, NV, Partial> t(last);
    if (trans_a) t.template mac<true>(a + i0, lda, b + j0, ldb, p0, p1);
    else t.template mac<false>(a + i0 * lda, lda, b + j0, ldb, p0, p1);
    t.store(c + i0 * ldc + j0, ldc, accumulate);
  });
}

// C = op(A) B, or C += op(A) B when accumulate; op(A) = A^T when trans_a (A stored k x m).
template <typename T>
void tile_gemm(bool trans_a, const T* a, int64_t lda, const T* b, int64_t ldb, T* c, int64_t ldc, int64_t m, int64_t n,
               int64_t k, bool accumulate) {
  tile_gemm_banded<T>(trans_a, a, lda, b, ldb, c, ldc, m, [n](int64_t) { return n; },
                      [k](int64_t) { return std::pair<int64_t, int64_t>(0, k); }, accumulate);
}

}  // namespace eat::cpu
