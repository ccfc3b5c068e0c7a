// tile_gemm (kernels/cpu/tile_gemm.h): the register-blocked products of attention's tiles, against
// a plain triple loop in f64, and the property the attention schedules rely on: an element's bits
// do not depend on the product it is computed in.
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/tile_gemm.h"
#include <doctest/doctest.h>

#include "rel_error.h"

using namespace eat;
using eat::cpu::tile_gemm;
using namespace eat::test;

namespace {

template <typename T>
std::vector<T> random_values(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal;
  std::vector<T> v(n);
  for (T& x : v) x = static_cast<T>(normal(gen));
  return v;
}

// C (m x n, row pitch ldc) = c0 + op(A) B, with A stored k x m when trans_a (pitch lda), in f64.
std::vector<double> reference(bool trans_a, const std::vector<double>& a, int64_t lda, const std::vector<double>& b,
                              int64_t ldb, const std::vector<double>& c0, int64_t ldc, int64_t m, int64_t n, int64_t k,
                              bool accumulate) {
  std::vector<double> c(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = accumulate ? c0[static_cast<size_t>(i * ldc + j)] : 0.0;
      for (int64_t p = 0; p < k; ++p) s += (trans_a ? a[p * lda + i] : a[i * lda + p]) * b[p * ldb + j];
      c[static_cast<size_t>(i * n + j)] = s;
    }
  return c;
}

template <typename T>
std::vector<double> as_f64(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// The m x n corner of a pitched buffer.
template <typename T>
std::vector<double> corner(const std::vector<T>& c, int64_t ldc, int64_t m, int64_t n) {
  std::vector<double> out;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) out.push_back(static_cast<double>(c[static_cast<size_t>(i * ldc + j)]));
  return out;
}

template <typename T>
void check_against_reference(double tolerance) {
  // Rows around the 6-row blocks, widths around the vectors (8 doubles or 16 floats with AVX-512,
  // half that with AVX2) and the 4-vector panels, inner sizes from none to a long span; every
  // operand with a pitch wider than it.
  unsigned seed = 1;
  for (int64_t m : {1, 4, 6, 7, 13, 64})
    for (int64_t n : {1, 3, 8, 15, 16, 17, 33, 64, 100})
      for (int64_t k : {0, 1, 5, 64, 130})
        for (bool trans_a : {false, true})
          for (bool accumulate : {false, true}) {
            CAPTURE(m);
            CAPTURE(n);
            CAPTURE(k);
            CAPTURE(trans_a);
            CAPTURE(accumulate);
            const int64_t lda = (trans_a ? m : k) + 3, ldb = n + 5, ldc = n + 2;
            const auto a = random_values<T>(static_cast<size_t>((trans_a ? k : m) * lda), seed++);
            const auto b = random_values<T>(static_cast<size_t>(k * ldb), seed++);
            auto c = random_values<T>(static_cast<size_t>(m * ldc), seed++);
            const auto c0 = as_f64(c);
            tile_gemm<T>(trans_a, a.data(), lda, b.data(), ldb, c.data(), ldc, m, n, k, accumulate);
            const auto want = reference(trans_a, as_f64(a), lda, as_f64(b), ldb, c0, ldc, m, n, k, accumulate);
            CHECK(rel_error(corner(c, ldc, m, n), want) < tolerance);
            // The pitch's padding columns are never written.
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = n; j < ldc; ++j) CHECK(c[static_cast<size_t>(i * ldc + j)] == static_cast<T>(c0[i * ldc + j]));
          }
}

}  // namespace

TEST_CASE("tile_gemm: products, transposed or not, set or accumulated, match a triple loop") {
  check_against_reference<double>(1e-14);
  check_against_reference<float>(1e-6);
}

TEST_CASE("tile_gemm: an element has the same bits whatever product it is computed in") {
  // Attention's two backward schedules compute the same (query, key) pairs in products of different
  // shapes (a 64-key tile, or a span of several); they agree bit for bit only if an element does not
  // depend on the rows and columns around it. The whole 70 x 100 product against it computed in
  // pieces: single rows, a ragged block of rows and columns, and column by column.
  const int64_t m = 70, n = 100, k = 77;
  const auto a = random_values<float>(static_cast<size_t>(m * k), 7), at = random_values<float>(static_cast<size_t>(k * m), 8);
  const auto b = random_values<float>(static_cast<size_t>(k * n), 9);
  for (bool trans_a : {false, true}) {
    CAPTURE(trans_a);
    const float* A = trans_a ? at.data() : a.data();
    const int64_t lda = trans_a ? m : k;
    auto a_at = [&](int64_t i) { return trans_a ? A + i : A + i * lda; };  // A's part for rows from i
    std::vector<float> whole(static_cast<size_t>(m * n)), pieces(static_cast<size_t>(m * n), 0.0f);
    tile_gemm<float>(trans_a, A, lda, b.data(), n, whole.data(), n, m, n, k, false);
    // Rows 0..4 one at a time (full width); rows 5..69 in a block of columns 0..36 and one of 37..99,
    // the second built column by column.
    for (int64_t i = 0; i < 5; ++i) tile_gemm<float>(trans_a, a_at(i), lda, b.data(), n, pieces.data() + i * n, n, 1, n, k, false);
    tile_gemm<float>(trans_a, a_at(5), lda, b.data(), n, pieces.data() + 5 * n, n, m - 5, 37, k, false);
    for (int64_t j = 37; j < n; ++j)
      tile_gemm<float>(trans_a, a_at(5), lda, b.data() + j, n, pieces.data() + 5 * n + j, n, m - 5, 1, k, false);
    CHECK(std::memcmp(whole.data(), pieces.data(), whole.size() * sizeof(float)) == 0);
  }
}

// The register tiles under tile_gemm (RegisterTile, for_each_tile) as the chunked linear attention
// kernel uses them, and the transpose. Inputs are small integers and halves, so every sum is
// exact and the checks are exact.
namespace {

using eat::cpu::for_each_tile;
using eat::cpu::kTileLanes;
using eat::cpu::RegisterTile;

template <typename T>
std::vector<T> small_ints(int64_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> pick(-3, 3);
  std::vector<T> out(static_cast<size_t>(n));
  for (T& x : out) x = static_cast<T>(pick(gen));
  return out;
}

// Widths around a vector and a tile of 4 vectors: one element, a vector less one, a vector, a
// vector and one, four vectors and three (two tiles, the second ragged).
template <typename T>
std::vector<int64_t> widths() {
  constexpr int64_t W = kTileLanes<T>;
  return {1, W - 1, W, W + 1, 4 * W + 3};
}

template <typename T>
void check_tile_walk() {
  constexpr int64_t W = kTileLanes<T>, MR = eat::cpu::kTileRows;
  for (int64_t rows : {1, 3, 4, 5, 6, 7, 13})
    for (int64_t width : widths<T>())
      for (bool lower : {false, true}) {
        CAPTURE(rows);
        CAPTURE(width);
        CAPTURE(lower);
        // lower: the tiles from row r0 stop at their last row, as causal score tiles do.
        auto n_of = [&](int64_t r0) { return lower ? std::min<int64_t>(width, r0 + MR) : width; };
        std::vector<int> seen(static_cast<size_t>(rows * width), 0);
        for_each_tile<T>(rows, n_of, [&]<int R, int NV, bool Partial>(int64_t r0, int64_t c0, int last) {
          CHECK(r0 % MR == 0);
          CHECK(R == std::min<int64_t>(MR, rows - r0));
          CHECK(last >= 1);
          CHECK(last <= W);
          CHECK(Partial == (last < W));
          for (int64_t r = r0; r < r0 + R; ++r)
            for (int64_t c = c0; c < c0 + (NV - 1) * W + last; ++c) seen[static_cast<size_t>(r * width + c)] += 1;
        });
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t end = n_of(r / MR * MR);
          for (int64_t c = 0; c < width; ++c) CHECK(seen[static_cast<size_t>(r * width + c)] == (c < end ? 1 : 0));
        }
      }
}

// out = diag(f) (A1 B1) + (A2 B2) o mask over the k ranges given, tile by tile, against loops;
// A2 read transposed or not; the mask's row r at mask_row0 - r (a negative pitch, as the decay
// masks are read). Columns past the width are never written.
template <typename T, bool TransA>
void check_tile_sums() {
  constexpr int64_t K1 = 7, K2 = 11, k0 = 2, k1 = K2 - 1;  // the second range skips both ends
  for (int64_t rows : {1, 4, 6, 8})
    for (int64_t cols : widths<T>()) {
      CAPTURE(rows);
      CAPTURE(cols);
      const int64_t ldb = cols + 1, ldc = cols + 5, lda2 = TransA ? rows : K2;
      const auto a1 = small_ints<T>(rows * K1, 1), b1 = small_ints<T>(K1 * ldb, 2);
      const auto a2 = small_ints<T>(rows * K2, 3), b2 = small_ints<T>(K2 * ldb, 4);
      std::vector<T> f(static_cast<size_t>(rows)), mask(static_cast<size_t>(rows + cols));
      for (int64_t r = 0; r < rows; ++r) f[static_cast<size_t>(r)] = static_cast<T>(1 << (r % 3));
      for (size_t i = 0; i < mask.size(); ++i) mask[i] = static_cast<T>(i % 4) / 2;
      const T* mask_row0 = mask.data() + rows - 1;
      auto a2_at = [&](int64_t r, int64_t k) { return a2[static_cast<size_t>(TransA ? k * lda2 + r : r * lda2 + k)]; };
      std::vector<T> got(static_cast<size_t>(rows * ldc), T(99));
      for_each_tile<T>(rows, [&](int64_t) { return cols; }, [&]<int R, int NV, bool Partial>(int64_t r0, int64_t c0, int last) {
        RegisterTile<T, R, NV, Partial> t(last), u(last);
        t.template mac<false>(a1.data() + r0 * K1, K1, b1.data() + c0, ldb, 0, K1);
        t.scale_rows(f.data() + r0);
        u.template mac<TransA>(TransA ? a2.data() + r0 : a2.data() + r0 * K2, lda2, b2.data() + c0, ldb, k0, k1);
        u.mul(mask_row0 - r0 + c0, -1);
        t.store(got.data() + r0 * ldc + c0, ldc, false);
        u.store(got.data() + r0 * ldc + c0, ldc, true);
      });
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
          T p1 = 0, p2 = 0;
          for (int64_t k = 0; k < K1; ++k) p1 += a1[static_cast<size_t>(r * K1 + k)] * b1[static_cast<size_t>(k * ldb + c)];
          for (int64_t k = k0; k < k1; ++k) p2 += a2_at(r, k) * b2[static_cast<size_t>(k * ldb + c)];
          CHECK(got[static_cast<size_t>(r * ldc + c)] == f[static_cast<size_t>(r)] * p1 + p2 * mask_row0[c - r]);
        }
        for (int64_t c = cols; c < ldc; ++c) CHECK(got[static_cast<size_t>(r * ldc + c)] == T(99));
      }
    }
}

template <typename T>
void check_transpose() {
  for (int64_t rows : widths<T>())
    for (int64_t cols : widths<T>()) {
      CAPTURE(rows);
      CAPTURE(cols);
      const int64_t lds = cols + 2, ldd = rows + 3;
      const auto src = small_ints<T>(rows * lds, 5);
      std::vector<T> dst(static_cast<size_t>(cols * ldd), T(99));
      eat::cpu::transpose(src.data(), lds, rows, cols, dst.data(), ldd);
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t r = 0; r < ldd; ++r)
          CHECK(dst[static_cast<size_t>(c * ldd + r)] == (r < rows ? src[static_cast<size_t>(r * lds + c)] : T(99)));
    }
}

}  // namespace

TEST_CASE("tile_gemm: the tile walk covers every element once, full or stopping at each block's last row") {
  check_tile_walk<float>();
  check_tile_walk<double>();
}

TEST_CASE("tile_gemm: register tiles sum products over k ranges, scale rows, mask and store partial widths") {
  check_tile_sums<float, false>();
  check_tile_sums<float, true>();
  check_tile_sums<double, false>();
  check_tile_sums<double, true>();
}

TEST_CASE("tile_gemm: transpose of ragged tiles with row pitches, nothing written outside") {
  check_transpose<float>();
  check_transpose<double>();
}
