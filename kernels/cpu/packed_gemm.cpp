#include "kernels/cpu/packed_gemm.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <utility>
#include <vector>
#endif

namespace eat::cpu {

#if defined(__AVX512F__)

namespace {

// A register tile: 12 rows (elements of op(A), broadcast) x 2 vectors of a B panel, 24
// accumulators. 6 x 4, 8 x 3 and 14 x 2 measured no faster.
constexpr int kRows = 12;
constexpr int kVecs = 2;
constexpr int kCols = 16 * kVecs;
// The longest inner block: a 12-row panel of A (18 KB) stays in L1 (48 KB a core here) while the
// B panels of its block stream past it from L2. 256 and 384 measured alike.
constexpr int64_t kMaxInner = 384;
// Packed B up to this size stays in L2 (2 MB a core here) beside a chunk of A's rows and C's,
// and every chunk of rows reads it from there; a larger B goes block by block (below).
constexpr int64_t kResidentB = int64_t{3} << 19;
constexpr int64_t kChunkTiles = 8;  // rows of C a thread finishes before the next: 96

__mmask16 lanes(int64_t count) {
  if (count >= 16) return __mmask16(0xFFFF);
  if (count <= 0) return __mmask16(0);
  return __mmask16((1u << count) - 1);
}

// The inner dimension in blocks of equal length (the last one shorter), as few as kMaxInner
// allows. Where they fall depends on K alone, so C's bits do too.
struct InnerBlocks {
  int64_t count, length;
  int64_t begin(int64_t q) const { return q * length; }
  int64_t size(int64_t q, int64_t k) const { return std::min(length, k - q * length); }
};

InnerBlocks inner_blocks(int64_t k) {
  const int64_t count = (k + kMaxInner - 1) / kMaxInner;
  return {count, (k + count - 1) / count};
}

// op(B)'s columns j0 .. j0+32 over the inner block p0 .. p0+kc as kc rows of 32 (zero past N).
void pack_b_panel(const float* b, int64_t n, int64_t k, bool trans_b, int64_t p0, int64_t kc, int64_t j0, float* out) {
  const int64_t cols = std::min<int64_t>(kCols, n - j0);
  if (!trans_b) {  // B [K, N]: a panel row is 32 contiguous floats of a row of B
    for (int64_t p = 0; p < kc; ++p) {
      const float* row = b + (p0 + p) * n + j0;
      for (int v = 0; v < kVecs; ++v)
        _mm512_store_ps(out + p * kCols + 16 * v, _mm512_maskz_loadu_ps(lanes(cols - 16 * v), row + 16 * v));
    }
    return;
  }
  // B stored [N, K] (a layer's weight): column j of op(B) is row j of B.
  for (int64_t j = 0; j < kCols; ++j) {
    const float* row = b + (j0 + j) * k + p0;
    if (j < cols) {
      for (int64_t p = 0; p < kc; ++p) out[p * kCols + j] = row[p];
    } else {
      for (int64_t p = 0; p < kc; ++p) out[p * kCols + j] = 0.0f;
    }
  }
}

// Row tiles t0 .. t1 of op(A) = A^T (A stored [K, M]) over p0 .. p0+kc, each as kc rows of 12
// (zero past M) at out + (t - t0) * kc * 12. The walk goes along A's rows, which are contiguous:
// tile by tile it would jump a whole row of A at every step, which no prefetcher follows.
void pack_a_tiles(const float* a, int64_t m, int64_t t0, int64_t t1, int64_t p0, int64_t kc, float* out) {
  const __mmask16 twelve = lanes(kRows);
  for (int64_t p = 0; p < kc; ++p) {
    const float* row = a + (p0 + p) * m;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i0 = t * kRows;
      _mm512_mask_storeu_ps(out + ((t - t0) * kc + p) * kRows, twelve,
                            _mm512_maskz_loadu_ps(lanes(std::min<int64_t>(kRows, m - i0)), row + i0));
    }
  }
}

// C[0 .. R, 0 .. cols] (+)= A-panel x B-panel over kc inner steps, summed in registers. A's
// element (r, p) is a[p * 12 + r] in a packed panel, a[r * lda + p] in rows of A read in place.
template <int R, bool kPackedA>
void tile(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, int64_t cols, bool add) {
  __m512 acc[R][kVecs];
  __mmask16 mask[kVecs];
#pragma GCC unroll 4
  for (int v = 0; v < kVecs; ++v) mask[v] = lanes(cols - 16 * v);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v)
      acc[r][v] = add ? _mm512_maskz_loadu_ps(mask[v], c + r * ldc + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    __m512 bv[kVecs];
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) bv[v] = _mm512_load_ps(b + p * kCols + 16 * v);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(kPackedA ? a[p * kRows + r] : a[r * lda + p]);
#pragma GCC unroll 4
      for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kVecs; ++v) _mm512_mask_storeu_ps(c + r * ldc + 16 * v, mask[v], acc[r][v]);
}

using TileFn = void (*)(int64_t, const float*, int64_t, const float*, float*, int64_t, int64_t, bool);

template <bool kPackedA, int... R>
constexpr std::array<TileFn, kRows + 1> tile_table(std::integer_sequence<int, R...>) {
  return {nullptr, &tile<R + 1, kPackedA>...};
}
constexpr auto kTilesInPlace = tile_table<false>(std::make_integer_sequence<int, kRows>{});
constexpr auto kTilesPacked = tile_table<true>(std::make_integer_sequence<int, kRows>{});

struct Product {
  const float *a, *b;
  float* c;
  int64_t m, n, k;
  bool trans_a, trans_b, accumulate;
  InnerBlocks inner;
  int64_t panels;  // 32-column panels of op(B)
};

// Panels [j0, j1) of op(B) over inner block q, at out + (j - j0) * size(q) * 32.
void pack_b_block(const Product& pr, int64_t q, int64_t j0, int64_t j1, float* out) {
  const int64_t p0 = pr.inner.begin(q), kc = pr.inner.size(q, pr.k);
  for (int64_t j = j0; j < j1; ++j) pack_b_panel(pr.b, pr.n, pr.k, pr.trans_b, p0, kc, j * kCols, out + (j - j0) * kc * kCols);
}

constexpr int64_t kPackedTiles = 16;  // row tiles of A^T packed at a time: 288 KB at the longest inner block

// Row tiles [t0, t1) against panels [j0, j1) over inner block q; panel j is at
// b_block + (j - j0) * size(q) * 32.
void run_tiles(const Product& pr, int64_t q, int64_t t0, int64_t t1, int64_t j0, int64_t j1, const float* b_block,
               float* a_panels) {
  const int64_t p0 = pr.inner.begin(q), kc = pr.inner.size(q, pr.k);
  const bool add = pr.accumulate || q > 0;
  for (int64_t g0 = t0; g0 < t1; g0 += kPackedTiles) {
    const int64_t g1 = std::min(t1, g0 + kPackedTiles);
    if (pr.trans_a) pack_a_tiles(pr.a, pr.m, g0, g1, p0, kc, a_panels);
    for (int64_t t = g0; t < g1; ++t) {
      const int64_t i0 = t * kRows, rows = std::min<int64_t>(kRows, pr.m - i0);
      const float* ap = pr.trans_a ? a_panels + (t - g0) * kc * kRows : pr.a + i0 * pr.k + p0;
      const TileFn fn = pr.trans_a ? kTilesPacked[rows] : kTilesInPlace[rows];
      for (int64_t j = j0; j < j1; ++j)
        fn(kc, ap, pr.k, b_block + (j - j0) * kc * kCols, pr.c + i0 * pr.n + j * kCols, pr.n,
           std::min<int64_t>(kCols, pr.n - j * kCols), add);
    }
  }
}

using AlignedFloats = std::vector<float, Eigen::aligned_allocator<float>>;

float* grown(AlignedFloats& buffer, int64_t floats) {
  if (buffer.size() < static_cast<size_t>(floats)) buffer.resize(static_cast<size_t>(floats));
  return buffer.data();
}

int64_t packed_b_bytes(const Product& pr) { return pr.k * pr.panels * kCols * static_cast<int64_t>(sizeof(float)); }

// A thread's row tiles [t0, t1) against a B packed whole (it stays in L2): 96 rows at a time, each
// chunk through every inner block, so the chunk's rows of A and C stay in L2 too.
void run_rows_resident(const Product& pr, const float* packed_b, int64_t t0, int64_t t1) {
  thread_local AlignedFloats a_buffer;
  float* a_panels = grown(a_buffer, kPackedTiles * kMaxInner * kRows + 16);
  for (int64_t c0 = t0; c0 < t1; c0 += kChunkTiles)
    for (int64_t q = 0; q < pr.inner.count; ++q)
      run_tiles(pr, q, c0, std::min(t1, c0 + kChunkTiles), 0, pr.panels,
                packed_b + pr.inner.begin(q) * pr.panels * kCols, a_panels);
}

// A B too large for L2 (a weight gradient's activations X in dW = dY^T X) is packed by every
// thread for itself, a block (inner block x the panels that fit) at a time, each block met by all
// of the thread's rows. Each thread reads all of B, but the packed blocks never leave its L2:
// packed once and shared, they went out to memory and came back to every thread.
void run_rows_streamed(const Product& pr, int64_t t0, int64_t t1) {
  thread_local AlignedFloats a_buffer, b_buffer;
  float* a_panels = grown(a_buffer, kPackedTiles * kMaxInner * kRows + 16);
  const int64_t panel_floats = pr.inner.length * kCols;
  const int64_t per_block = std::max<int64_t>(1, kResidentB / 2 / (panel_floats * static_cast<int64_t>(sizeof(float))));
  float* b_block = grown(b_buffer, per_block * panel_floats);
  for (int64_t j0 = 0; j0 < pr.panels; j0 += per_block) {
    const int64_t j1 = std::min(pr.panels, j0 + per_block);
    for (int64_t q = 0; q < pr.inner.count; ++q) {
      pack_b_block(pr, q, j0, j1, b_block);
      run_tiles(pr, q, t0, t1, j0, j1, b_block, a_panels);
    }
  }
}

}  // namespace

bool packed_gemm_available() { return true; }

bool packed_gemm_worth(int64_t m, int64_t n, int64_t k) {
  return m >= 4 * kRows && n >= 16 && k >= 16 && m * n * k >= (int64_t{1} << 20);
}

void packed_gemm(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
                 bool accumulate) {
  const Product pr{a, b, c, m, n, k, trans_a, trans_b, accumulate, inner_blocks(k), (n + kCols - 1) / kCols};
  const int64_t tiles = (m + kRows - 1) / kRows;
  // Inside another parallel region (a batch of products) this product is one thread's work.
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (packed_b_bytes(pr) > kResidentB) {
#pragma omp parallel num_threads(threads)
    {
      const int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
      run_rows_streamed(pr, tiles * me / team, tiles * (me + 1) / team);
    }
    return;
  }
  // Packed once for every thread, kept by the calling thread between calls.
  thread_local AlignedFloats b_buffer;
  float* packed_b = grown(b_buffer, k * pr.panels * kCols);
#pragma omp parallel num_threads(threads)
  {
#pragma omp for schedule(static)
    for (int64_t q = 0; q < pr.inner.count; ++q)
      pack_b_block(pr, q, 0, pr.panels, packed_b + pr.inner.begin(q) * pr.panels * kCols);
    const int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
    run_rows_resident(pr, packed_b, tiles * me / team, tiles * (me + 1) / team);
  }
}

#else  // no AVX-512: every product stays with Eigen

bool packed_gemm_available() { return false; }
bool packed_gemm_worth(int64_t, int64_t, int64_t) { return false; }
void packed_gemm(const float*, const float*, float*, int64_t, int64_t, int64_t, bool, bool, bool) {}

#endif

}  // namespace eat::cpu
