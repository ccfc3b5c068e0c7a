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
