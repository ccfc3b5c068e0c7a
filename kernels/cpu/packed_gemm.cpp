#include "kernels/cpu/packed_gemm.h"

#include "base/error.h"
#include "kernels/cpu/tile_gemm.h"  // Avx512Vec / Avx2Vec: the vector unit's loads, stores and fused multiply-add

#if defined(EAT_TILE_GEMM)
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <utility>
#endif
#include <vector>

namespace eat::cpu {

#if defined(EAT_TILE_GEMM)

namespace {

// The longest inner block: a 12-row panel of A (18 KB with AVX-512) stays in L1 (48 KB a core here)
// while the B panels of its block stream past it from L2. 256 and 384 measured alike.
constexpr int64_t kMaxInner = 384;
// Packed B up to this size stays in L2 (2 MB a core here) beside a chunk of A's rows and C's,
// and every chunk of rows reads it from there; a larger B goes block by block (below).
constexpr int64_t kResidentB = int64_t{3} << 19;
constexpr int64_t kChunkTiles = 8;  // row tiles of C a thread finishes before the next

// The inner dimension in blocks of equal length (the last one shorter), as few as kMaxInner
// allows; when A's inner columns lie in parts (packed_gemm_from_parts), each part on its own, so
// that no block crosses two. Where they fall depends on K (and the parts) alone, so C's bits do too.
struct InnerBlocks {
  std::vector<int64_t> starts;  // block q is [starts[q], starts[q + 1])
  int64_t longest = 0;
  int64_t count() const { return static_cast<int64_t>(starts.size()) - 1; }
  int64_t begin(int64_t q) const { return starts[static_cast<size_t>(q)]; }
  int64_t size(int64_t q) const { return starts[static_cast<size_t>(q) + 1] - starts[static_cast<size_t>(q)]; }
};

InnerBlocks inner_blocks(const std::vector<int64_t>& spans) {
  InnerBlocks blocks{{0}, 0};
  for (int64_t span : spans) {
    const int64_t count = (span + kMaxInner - 1) / kMaxInner, length = count > 0 ? (span + count - 1) / count : 0;
    const int64_t first = blocks.starts.back();
    for (int64_t q = 0; q < count; ++q) blocks.starts.push_back(first + std::min(span, (q + 1) * length));
    blocks.longest = std::max(blocks.longest, length);
  }
  return blocks;
}

// A's stored columns, in parts side by side: part i is [rows, widths[i]] at data[i], its columns
// [offsets[i], offsets[i] + widths[i]) of the whole (one part: a plain A). A is [M, K] stored
// so, or [K, M] with trans_a.
struct ColumnsIn {
  std::vector<const float*> data;
  std::vector<int64_t> widths, offsets;

  ColumnsIn(std::vector<const float*> parts, std::vector<int64_t> part_widths)
      : data(std::move(parts)), widths(std::move(part_widths)) {
    int64_t first = 0;
    for (int64_t w : widths) {
      offsets.push_back(first);
      first += w;
    }
  }
  // The part holding stored column c.
  size_t part_of(int64_t c) const {
    return static_cast<size_t>(std::upper_bound(offsets.begin(), offsets.end(), c) - offsets.begin()) - 1;
  }
  // Stored row r's element at column c.
  const float* at(int64_t r, int64_t c) const {
    const size_t i = part_of(c);
    return data[i] + r * widths[i] + (c - offsets[i]);
  }
  int64_t pitch_at(int64_t c) const { return widths[part_of(c)]; }
};

// A panel: its columns [col, col + cols) of op(B), and where they go in C: C's first row at the
// panel's first column, and C's row pitch there (C's columns may lie in several tensors side by
// side: packed_gemm_into_parts).
struct PanelOut {
  float* first;
  int64_t pitch;
  int64_t col, cols;
};

struct Product {
  const ColumnsIn* a;
  const float* b;
  const PanelOut* out;  // one per panel
  int64_t m, n, k;
  bool trans_a, trans_b, accumulate;
  InnerBlocks inner;
  int64_t panels;  // panels of op(B), up to two vectors wide
  // R [M, N] (C's pitch) added to each element after its last inner block (packed_gemm_onto), or null.
  const float* addend = nullptr;
  // packed_gemm_rows_done: told of each row tile of C once it is final.
  const RowsDone* rows_done = nullptr;
};

using AlignedFloats = std::vector<float, Eigen::aligned_allocator<float>>;

float* grown(AlignedFloats& buffer, int64_t floats) {
  if (buffer.size() < static_cast<size_t>(floats)) buffer.resize(static_cast<size_t>(floats));
  return buffer.data();
}

// Everything that depends on the vector unit, for one of them (V: tile_gemm.h's Avx512Vec<float>
// or Avx2Vec<float>).
template <typename V>
struct Kernels {
  using R = typename V::R;
  static constexpr int kLanes = V::lanes;
  // A register tile: rows of op(A) (broadcast) x 2 vectors of a B panel. With AVX-512's 32
  // registers, 12 rows (24 accumulators; 6 x 4, 8 x 3 and 14 x 2 measured no faster); with AVX2's
  // 16, 6 rows (12 accumulators).
  static constexpr int kRows = kLanes == 16 ? 12 : 6;
  static constexpr int kVecs = 2;
  static constexpr int kCols = kLanes * kVecs;
  static_assert(kRows <= kLanes, "a row of a packed A panel is one vector");

  // The first `count` lanes at p (all of them, or none), the rest zero.
  static R load_lanes(const float* p, int64_t count) {
    if (count >= kLanes) return V::load(p);
    if (count <= 0) return V::zero();
    return V::load(p, static_cast<int>(count));
  }
  static void store_lanes(float* p, R v, int64_t count) {
    if (count >= kLanes) V::store(p, v);
    else if (count > 0) V::store(p, v, static_cast<int>(count));
  }

  // op(B)'s columns j0 .. j0+cols (cols <= kCols) over the inner block p0 .. p0+kc as kc rows of
  // kCols (zero past cols).
  static void pack_b_panel(const float* b, int64_t n, int64_t k, bool trans_b, int64_t p0, int64_t kc, int64_t j0,
                           int64_t cols, float* out) {
    if (!trans_b) {  // B [K, N]: a panel row is kCols contiguous floats of a row of B
      for (int64_t p = 0; p < kc; ++p) {
        const float* row = b + (p0 + p) * n + j0;
        for (int v = 0; v < kVecs; ++v)
          V::store(out + p * kCols + kLanes * v, load_lanes(row + kLanes * v, cols - kLanes * v));
      }
      return;
    }
    // B stored [N, K] (a layer's weight): column j of op(B) is row j of B, so the panel is the
    // transpose of `cols` rows of B (in registers, a vector's square at a time).
    transpose(b + j0 * k + p0, k, cols, kc, out, kCols);
    if (cols < kCols)
      for (int64_t p = 0; p < kc; ++p) std::fill(out + p * kCols + cols, out + (p + 1) * kCols, 0.0f);
  }

  // Row tiles t0 .. t1 of op(A) = A^T (A stored [K, M]) over p0 .. p0+kc, each as kc rows of
  // kRows (zero past M) at out + (t - t0) * kc * kRows. A plain A is walked along its rows, which
  // are contiguous: tile by tile it would jump a whole row of A at every step, which no
  // prefetcher follows. A in parts goes tile by tile, and a tile whose rows cross from one part
  // into the next is gathered element by element.
  static void pack_a_tiles(const ColumnsIn& a, int64_t m, int64_t t0, int64_t t1, int64_t p0, int64_t kc, float* out) {
    if (a.data.size() == 1) {
      for (int64_t p = 0; p < kc; ++p) {
        const float* row = a.data[0] + (p0 + p) * m;
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t i0 = t * kRows;
          V::store(out + ((t - t0) * kc + p) * kRows, load_lanes(row + i0, std::min<int64_t>(kRows, m - i0)), kRows);
        }
      }
      return;
    }
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i0 = t * kRows, rows = std::min<int64_t>(kRows, m - i0);
      float* panel = out + (t - t0) * kc * kRows;
      const size_t part = a.part_of(i0);
      if (i0 + rows <= a.offsets[part] + a.widths[part]) {
        const float* first = a.at(p0, i0);
        for (int64_t p = 0; p < kc; ++p) V::store(panel + p * kRows, load_lanes(first + p * a.widths[part], rows), kRows);
        continue;
      }
      for (int64_t p = 0; p < kc; ++p) {
        alignas(64) float gathered[kLanes] = {};
        for (int64_t r = 0; r < rows; ++r) gathered[r] = *a.at(p0 + p, i0 + r);
        V::store(panel + p * kRows, V::load(gathered), kRows);
      }
    }
  }

  // C[0 .. R, 0 .. cols] (+)= A-panel x B-panel over kc inner steps, summed in registers from zero
  // and then stored or added to C, and then (addend not null) R's tile there added. A's element (r, p)
  // is a[p * kRows + r] in a packed panel, a[r * lda + p] in rows of A read in place.
  template <int Rows, bool kPackedA, bool kAddend>
  static void tile(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, int64_t cols,
                   bool add, const float* addend) {
    R acc[Rows][kVecs];
#pragma GCC unroll 16
    for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < kVecs; ++v) acc[r][v] = V::zero();
#pragma GCC unroll 4
    for (int64_t p = 0; p < kc; ++p) {
      R bv[kVecs];
#pragma GCC unroll 4
      for (int v = 0; v < kVecs; ++v) bv[v] = V::load(b + p * kCols + kLanes * v);
#pragma GCC unroll 16
      for (int r = 0; r < Rows; ++r) {
        const R x = V::broadcast(kPackedA ? a[p * kRows + r] : a[r * lda + p]);
#pragma GCC unroll 4
        for (int v = 0; v < kVecs; ++v) acc[r][v] = V::fma(x, bv[v], acc[r][v]);
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < Rows; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < kVecs; ++v) {
        float* out = c + r * ldc + kLanes * v;
        const int64_t count = cols - kLanes * v;
        R sum = add ? V::add(load_lanes(out, count), acc[r][v]) : acc[r][v];
        if constexpr (kAddend) sum = V::add(sum, load_lanes(addend + r * ldc + kLanes * v, count));
        store_lanes(out, sum, count);
      }
  }

  using TileFn = void (*)(int64_t, const float*, int64_t, const float*, float*, int64_t, int64_t, bool, const float*);

  // By rows; the addend's tiles are their own instances, so that the plain ones carry no test.
  template <bool kPackedA, bool kAddend, int... Rs>
  static constexpr std::array<TileFn, kRows + 1> tile_table(std::integer_sequence<int, Rs...>) {
    return {nullptr, &tile<Rs + 1, kPackedA, kAddend>...};
  }
  static constexpr auto kTilesInPlace = tile_table<false, false>(std::make_integer_sequence<int, kRows>{});
  static constexpr auto kTilesPacked = tile_table<true, false>(std::make_integer_sequence<int, kRows>{});
  static constexpr auto kTilesInPlaceAddend = tile_table<false, true>(std::make_integer_sequence<int, kRows>{});

  // Panels [j0, j1) of op(B) over inner block q, at out + (j - j0) * size(q) * kCols.
  static void pack_b_block(const Product& pr, int64_t q, int64_t j0, int64_t j1, float* out) {
    const int64_t p0 = pr.inner.begin(q), kc = pr.inner.size(q);
    for (int64_t j = j0; j < j1; ++j)
      pack_b_panel(pr.b, pr.n, pr.k, pr.trans_b, p0, kc, pr.out[j].col, pr.out[j].cols, out + (j - j0) * kc * kCols);
  }

  // Row tiles of A^T packed at a time: 288 KB at the longest inner block with AVX-512.
  static constexpr int64_t kPackedTiles = 16;

  // Row tiles [t0, t1) against panels [j0, j1) over inner block q; panel j is at
  // b_block + (j - j0) * size(q) * kCols.
  static void run_tiles(const Product& pr, int64_t q, int64_t t0, int64_t t1, int64_t j0, int64_t j1,
                        const float* b_block, float* a_panels) {
    const int64_t p0 = pr.inner.begin(q), kc = pr.inner.size(q);
    const bool add = pr.accumulate || q > 0;
    const bool last = q + 1 == pr.inner.count();
    // A read in place: the block's columns lie in one part of A.
    const int64_t lda = pr.trans_a ? 0 : pr.a->pitch_at(p0);
    for (int64_t g0 = t0; g0 < t1; g0 += kPackedTiles) {
      const int64_t g1 = std::min(t1, g0 + kPackedTiles);
      if (pr.trans_a) pack_a_tiles(*pr.a, pr.m, g0, g1, p0, kc, a_panels);
      for (int64_t t = g0; t < g1; ++t) {
        const int64_t i0 = t * kRows, rows = std::min<int64_t>(kRows, pr.m - i0);
        const float* ap = pr.trans_a ? a_panels + (t - g0) * kc * kRows : pr.a->at(i0, p0);
        const bool addend = last && pr.addend;  // packed_gemm_onto: never with trans_a
        const TileFn fn = pr.trans_a ? kTilesPacked[rows] : addend ? kTilesInPlaceAddend[rows] : kTilesInPlace[rows];
        for (int64_t j = j0; j < j1; ++j) {
          const PanelOut& o = pr.out[j];
          fn(kc, ap, lda, b_block + (j - j0) * kc * kCols, o.first + i0 * o.pitch, o.pitch, o.cols, add,
             addend ? pr.addend + i0 * pr.n + o.col : nullptr);
        }
        // The tile's last panel over the last inner block: its rows of C are final.
        if (last && j1 == pr.panels && pr.rows_done) pr.rows_done->fn(pr.rows_done->context, i0, rows);
      }
    }
  }

  static int64_t packed_b_bytes(const Product& pr) {
    return pr.k * pr.panels * kCols * static_cast<int64_t>(sizeof(float));
  }

  // A thread's row tiles [t0, t1) against a B packed whole (it stays in L2): 8 tiles at a time, each
  // chunk through every inner block, so the chunk's rows of A and C stay in L2 too.
  static void run_rows_resident(const Product& pr, const float* packed_b, int64_t t0, int64_t t1) {
    thread_local AlignedFloats a_buffer;
    float* a_panels = grown(a_buffer, kPackedTiles * kMaxInner * kRows + 16);
    for (int64_t c0 = t0; c0 < t1; c0 += kChunkTiles)
      for (int64_t q = 0; q < pr.inner.count(); ++q)
        run_tiles(pr, q, c0, std::min(t1, c0 + kChunkTiles), 0, pr.panels,
                  packed_b + pr.inner.begin(q) * pr.panels * kCols, a_panels);
  }

  // A B too large for L2 (a weight gradient's activations X in dW = dY^T X) is packed by every
  // thread for itself, a block (inner block x the panels that fit) at a time, each block met by
  // all of the thread's rows. Each thread reads all of B, but the packed blocks never leave its
  // L2: packed once and shared, they went out to memory and came back to every thread.
  static void run_rows_streamed(const Product& pr, int64_t t0, int64_t t1) {
    thread_local AlignedFloats a_buffer, b_buffer;
    float* a_panels = grown(a_buffer, kPackedTiles * kMaxInner * kRows + 16);
    const int64_t panel_floats = pr.inner.longest * kCols;
    const int64_t panel_bytes = panel_floats * static_cast<int64_t>(sizeof(float));
    const int64_t per_block = std::max<int64_t>(1, kResidentB / 2 / panel_bytes);
    float* b_block = grown(b_buffer, per_block * panel_floats);
    for (int64_t j0 = 0; j0 < pr.panels; j0 += per_block) {
      const int64_t j1 = std::min(pr.panels, j0 + per_block);
      for (int64_t q = 0; q < pr.inner.count(); ++q) {
        pack_b_block(pr, q, j0, j1, b_block);
        run_tiles(pr, q, t0, t1, j0, j1, b_block, a_panels);
      }
    }
  }

  static void run(const Product& pr) {
    const int64_t tiles = (pr.m + kRows - 1) / kRows;
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
    float* packed_b = grown(b_buffer, pr.k * pr.panels * kCols);
#pragma omp parallel num_threads(threads)
    {
      // Panel by panel over the threads (a layer's weight is often one inner block).
#pragma omp for schedule(static) collapse(2)
      for (int64_t q = 0; q < pr.inner.count(); ++q)
        for (int64_t j = 0; j < pr.panels; ++j)
          pack_b_block(pr, q, j, j + 1, packed_b + (pr.inner.begin(q) * pr.panels + j * pr.inner.size(q)) * kCols);
      const int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
      run_rows_resident(pr, packed_b, tiles * me / team, tiles * (me + 1) / team);
    }
  }
};

// C's columns as parts side by side: part i is [M, widths[i]] at outs[i] (one part: a plain C).
struct ColumnParts {
  float* const* outs;
  const int64_t* widths;
  int64_t count;
};

// Each part's columns as panels of up to `cols`, part after part (a part's last panel may be
// narrower).
std::vector<PanelOut> panels_of(const ColumnParts& c, int64_t cols) {
  std::vector<PanelOut> out;
  for (int64_t i = 0, first = 0; i < c.count; first += c.widths[i++])
    for (int64_t col = 0; col < c.widths[i]; col += cols)
      out.push_back({c.outs[i] + col, c.widths[i], first + col, std::min(cols, c.widths[i] - col)});
  return out;
}

template <typename V>
void run_with(const ColumnsIn& a, const float* b, const ColumnParts& c, int64_t m, int64_t k, bool trans_a, bool trans_b,
              bool accumulate, const float* addend = nullptr, const RowsDone* rows_done = nullptr) {
  int64_t n = 0;
  for (int64_t i = 0; i < c.count; ++i) n += c.widths[i];
  const std::vector<PanelOut> out = panels_of(c, Kernels<V>::kCols);
  // The inner dimension is A's stored columns without trans_a, so its blocks follow A's parts.
  const InnerBlocks inner = inner_blocks(trans_a ? std::vector<int64_t>{k} : a.widths);
  Kernels<V>::run(Product{&a, b, out.data(), m, n, k, trans_a, trans_b, accumulate, inner,
                          static_cast<int64_t>(out.size()), addend, rows_done});
}

template <typename... Args>
void run_widest_or(int vector_bits, Args&&... args) {
#if defined(EAT_AVX2_VEC)
  if (vector_bits == 256) return run_with<tile_gemm_detail::Avx2Vec<float>>(std::forward<Args>(args)...);
#endif
  EAT_CHECK(vector_bits == 0 || vector_bits == tile_gemm_detail::Vec<float>::lanes * 32,
            "packed_gemm: this build has no ", vector_bits, "-bit kernel");
  run_with<tile_gemm_detail::Vec<float>>(std::forward<Args>(args)...);
}

}  // namespace

std::vector<int> packed_gemm_widths() {
  std::vector<int> widths;
#if defined(EAT_AVX512_VEC)
  widths.push_back(512);
#endif
#if defined(EAT_AVX2_VEC)
  widths.push_back(256);
#endif
  return widths;
}

bool packed_gemm_available() { return true; }

bool packed_gemm_worth(int64_t m, int64_t n, int64_t k) {
  return m >= 48 && n >= 16 && k >= 16 && m * n * k >= (int64_t{1} << 20);
}

namespace {

// dst (cols x rows, pitch rows) = src^T (src rows x cols, pitch cols), the rows of dst spread over
// the threads in whole vectors.
void transpose_over_threads(const float* src, int64_t rows, int64_t cols, float* dst) {
  constexpr int64_t kStripe = 64;  // columns of src per task
  const int64_t stripes = (cols + kStripe - 1) / kStripe;
#pragma omp parallel for schedule(static) if(!omp_in_parallel() && rows * cols >= (int64_t{1} << 16))
  for (int64_t s = 0; s < stripes; ++s) {
    const int64_t c0 = s * kStripe;
    transpose(src + c0, cols, rows, std::min(kStripe, cols - c0), dst + c0 * rows, rows);
  }
}

// A weight gradient dW = dY^T X with fewer rows than columns (a down projection's: 256 x 683) as
// dW^T = X^T dY. A B too large for L2 is packed by every thread whole (run_rows_streamed), so B
// should be the smaller operand; swapped, X is split between the threads and dY packed by each.
// An FMA's two factors commute and the inner blocks depend on K alone, so every element is the
// same chain with the same bits; only dW^T's trip through a buffer is added, a small fraction of
// the product (M x N against M x N x K).
bool swap_operands_worth(int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b) {
  return trans_a && !trans_b && m < n && k * n * static_cast<int64_t>(sizeof(float)) > kResidentB;
}

}  // namespace

void packed_gemm(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b,
                 bool accumulate, int vector_bits) {
  if (swap_operands_worth(m, n, k, trans_a, trans_b)) {
    thread_local AlignedFloats buffer;
    float* c_t = grown(buffer, n * m);
    if (accumulate) transpose_over_threads(c, m, n, c_t);
    run_widest_or(vector_bits, ColumnsIn({b}, {n}), a, ColumnParts{&c_t, &m, 1}, n, k, true, false, accumulate);
    transpose_over_threads(c_t, n, m, c);
    return;
  }
  run_widest_or(vector_bits, ColumnsIn({a}, {trans_a ? m : k}), b, ColumnParts{&c, &n, 1}, m, k, trans_a, trans_b,
                accumulate);
}

void packed_gemm_onto(const float* a, const float* b, const float* r, float* c, int64_t m, int64_t n, int64_t k,
                      bool trans_b, int vector_bits) {
  run_widest_or(vector_bits, ColumnsIn({a}, {k}), b, ColumnParts{&c, &n, 1}, m, k, false, trans_b, false, r);
}

void packed_gemm_rows_done(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, bool trans_b,
                           const RowsDone& done, int vector_bits) {
  run_widest_or(vector_bits, ColumnsIn({a}, {k}), b, ColumnParts{&c, &n, 1}, m, k, false, trans_b, false, nullptr,
                &done);
}

void packed_gemm_into_parts(const float* a, const float* b, const std::vector<float*>& outs,
                            const std::vector<int64_t>& widths, int64_t m, int64_t k, bool trans_a, bool trans_b,
                            const RowsDone* done, int vector_bits) {
  EAT_CHECK(outs.size() == widths.size() && !widths.empty(), "packed_gemm_into_parts: ", outs.size(), " parts but ",
            widths.size(), " widths");
  run_widest_or(vector_bits, ColumnsIn({a}, {trans_a ? m : k}), b,
                ColumnParts{outs.data(), widths.data(), static_cast<int64_t>(widths.size())}, m, k, trans_a, trans_b,
                false, nullptr, done);
}

void packed_gemm_from_parts(const std::vector<const float*>& parts, const std::vector<int64_t>& widths, const float* b,
                            float* c, int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, bool accumulate,
                            int vector_bits) {
  int64_t total = 0;
  for (int64_t w : widths) total += w;
  EAT_CHECK(!parts.empty() && parts.size() == widths.size() && total == (trans_a ? m : k),
            "packed_gemm_from_parts: the parts' widths add up to ", total, ", not to A's ", trans_a ? m : k,
            " stored columns");
  run_widest_or(vector_bits, ColumnsIn(parts, widths), b, ColumnParts{&c, &n, 1}, m, k, trans_a, trans_b, accumulate);
}

#else  // no AVX-512 or AVX2: every product stays with Eigen

std::vector<int> packed_gemm_widths() { return {}; }
bool packed_gemm_available() { return false; }
bool packed_gemm_worth(int64_t, int64_t, int64_t) { return false; }
void packed_gemm(const float*, const float*, float*, int64_t, int64_t, int64_t, bool, bool, bool, int vector_bits) {
  EAT_CHECK(false, "packed_gemm: this build has no ", vector_bits, "-bit kernel");
}
void packed_gemm_onto(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t, bool,
                      int vector_bits) {
  EAT_CHECK(false, "packed_gemm: this build has no ", vector_bits, "-bit kernel");
}
void packed_gemm_rows_done(const float*, const float*, float*, int64_t, int64_t, int64_t, bool, const RowsDone&,
                           int vector_bits) {
  EAT_CHECK(false, "packed_gemm: this build has no ", vector_bits, "-bit kernel");
}
void packed_gemm_from_parts(const std::vector<const float*>&, const std::vector<int64_t>&, const float*, float*, int64_t,
                            int64_t, int64_t, bool, bool, bool, int vector_bits) {
  EAT_CHECK(false, "packed_gemm: this build has no ", vector_bits, "-bit kernel");
}
void packed_gemm_into_parts(const float*, const float*, const std::vector<float*>&, const std::vector<int64_t>&,
                            int64_t, int64_t, bool, bool, const RowsDone*, int vector_bits) {
  EAT_CHECK(false, "packed_gemm: this build has no ", vector_bits, "-bit kernel");
}

#endif

}  // namespace eat::cpu
