// packed_gemm (kernels/cpu/packed_gemm.h), the f32 GEMM behind cpu::gemm<float> on AVX-512 builds:
// against a triple loop in f64 on ragged shapes, every transpose, accumulate or not (C starting as
// NaN without it), both ways of meeting B (packed once and shared, or block by block per thread),
// and the promise about its bits: the same on any thread count, inside another parallel region,
// and for a row or a column whatever else is computed beside it.
#include <omp.h>

#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/packed_gemm.h"
#include <doctest/doctest.h>

#include "rel_error.h"

using namespace eat;
using namespace eat::test;

namespace {

std::vector<float> random_floats(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& x : v) x = normal(gen);
  return v;
}

struct Product {
  int64_t m, n, k;
  bool trans_a, trans_b;
};

// op(A)'s element (i, p) and op(B)'s (p, j) for the stored layouts.
float a_at(const Product& s, const std::vector<float>& a, int64_t i, int64_t p) {
  return s.trans_a ? a[static_cast<size_t>(p * s.m + i)] : a[static_cast<size_t>(i * s.k + p)];
}
float b_at(const Product& s, const std::vector<float>& b, int64_t p, int64_t j) {
  return s.trans_b ? b[static_cast<size_t>(j * s.k + p)] : b[static_cast<size_t>(p * s.n + j)];
}

std::vector<double> reference(const Product& s, const std::vector<float>& a, const std::vector<float>& b,
                              const std::vector<float>& c0, bool accumulate) {
  std::vector<double> c(static_cast<size_t>(s.m * s.n));
  for (int64_t i = 0; i < s.m; ++i)
    for (int64_t j = 0; j < s.n; ++j) {
      double sum = accumulate ? c0[static_cast<size_t>(i * s.n + j)] : 0.0;
      for (int64_t p = 0; p < s.k; ++p) sum += double(a_at(s, a, i, p)) * double(b_at(s, b, p, j));
      c[static_cast<size_t>(i * s.n + j)] = sum;
    }
  return c;
}

std::vector<float> run(const Product& s, const std::vector<float>& a, const std::vector<float>& b,
                           const std::vector<float>& c0, bool accumulate) {
  std::vector<float> c = accumulate ? c0 : std::vector<float>(c0.size(), std::numeric_limits<float>::quiet_NaN());
  cpu::packed_gemm(a.data(), b.data(), c.data(), s.m, s.n, s.k, s.trans_a, s.trans_b, accumulate);
  return c;
}

std::vector<double> widened(const std::vector<float>& v) { return {v.begin(), v.end()}; }

}  // namespace

TEST_CASE("packed_gemm matches f64 on ragged shapes, every transpose, on 1, 2 and 3 threads with the same bits") {
  if (!cpu::packed_gemm_available()) return;  // not an AVX-512 build: cpu::gemm uses Eigen throughout
  // m: whole and partial row tiles; n: whole and partial panels (one under a vector); k: one
  // inner block, and 385 / 1100 in 2 / 3 blocks. 1700 x 260 packs a B of 1.7 MB, past what is
  // kept in L2, so it is met block by block. k = 6000, as a weight gradient over the tokens of a
  // batch: one f32 chain over all of it read 1.4e-6 here, the blocked sums 3.6e-7.
  const std::vector<Product> shapes = {{13, 70, 300, false, true},  {100, 45, 385, false, false}, {49, 257, 64, true, false},
                                        {36, 33, 1100, true, true},  {7, 9, 20, false, false},    {30, 260, 1700, true, false},
                                        {25, 260, 1700, false, false}, {26, 40, 6000, true, false}};
  const int threads_before = omp_get_max_threads();
  unsigned seed = 1;
  for (const Product& s : shapes)
    for (bool accumulate : {false, true}) {
      CAPTURE(s.m);
      CAPTURE(s.n);
      CAPTURE(s.k);
      CAPTURE(s.trans_a);
      CAPTURE(s.trans_b);
      CAPTURE(accumulate);
      const auto a = random_floats(static_cast<size_t>(s.m * s.k), seed++);
      const auto b = random_floats(static_cast<size_t>(s.k * s.n), seed++);
      const auto c0 = random_floats(static_cast<size_t>(s.m * s.n), seed++);
      const std::vector<double> ref = reference(s, a, b, c0, accumulate);
      std::vector<std::vector<float>> by_threads;
      for (int threads : {1, 2, 3}) {
        omp_set_num_threads(threads);
        by_threads.push_back(run(s, a, b, c0, accumulate));
        // blocked f32 sums of up to 6000 products: 3.6e-7 seen
        CHECK(rel_error(widened(by_threads.back()), ref) <= 1e-6);
      }
      omp_set_num_threads(threads_before);
      CHECK(by_threads[1] == by_threads[0]);
      CHECK(by_threads[2] == by_threads[0]);
    }
}

TEST_CASE("packed_gemm: a row's and a column's bits do not depend on what is computed beside them") {
  if (!cpu::packed_gemm_available()) return;
  // Rows 5 .. 22 of A alone (a sequence slice), and columns 40 .. 79 of op(B) alone, against the
  // same elements of the whole product; the whole B (1700 x 260) is met block by block, the slice
  // of columns (1700 x 40) packed once and shared.
  const Product whole{60, 260, 1700, false, false};
  const auto a = random_floats(static_cast<size_t>(whole.m * whole.k), 11);
  const auto b = random_floats(static_cast<size_t>(whole.k * whole.n), 12);
  const std::vector<float> none(static_cast<size_t>(whole.m * whole.n));
  const std::vector<float> c = run(whole, a, b, none, false);

  const int64_t r0 = 5, rows = 18;
  const Product row_slice{rows, whole.n, whole.k, false, false};
  const std::vector<float> a_rows(a.begin() + r0 * whole.k, a.begin() + (r0 + rows) * whole.k);
  const std::vector<float> c_rows = run(row_slice, a_rows, b, std::vector<float>(rows * whole.n), false);
  CHECK(std::vector<float>(c.begin() + r0 * whole.n, c.begin() + (r0 + rows) * whole.n) == c_rows);

  const int64_t j0 = 40, cols = 40;
  const Product col_slice{whole.m, cols, whole.k, false, false};
  std::vector<float> b_cols;
  for (int64_t p = 0; p < whole.k; ++p)
    b_cols.insert(b_cols.end(), b.begin() + p * whole.n + j0, b.begin() + p * whole.n + j0 + cols);
  const std::vector<float> c_cols = run(col_slice, a, b_cols, std::vector<float>(whole.m * cols), false);
  bool same = true;
  for (int64_t i = 0; i < whole.m; ++i)
    for (int64_t j = 0; j < cols; ++j) same = same && c[static_cast<size_t>(i * whole.n + j0 + j)] == c_cols[static_cast<size_t>(i * cols + j)];
  CHECK(same);
}

TEST_CASE("packed_gemm inside a parallel region (a batch of products) gives the bits it gives outside one") {
  if (!cpu::packed_gemm_available()) return;
  const Product s{50, 70, 300, false, true};
  const auto a = random_floats(static_cast<size_t>(s.m * s.k), 21);
  const auto b = random_floats(static_cast<size_t>(s.k * s.n), 22);
  const std::vector<float> c0(static_cast<size_t>(s.m * s.n));
  const std::vector<float> outside = run(s, a, b, c0, false);
  std::vector<std::vector<float>> inside(4);
#pragma omp parallel for num_threads(2)
  for (int i = 0; i < 4; ++i) inside[static_cast<size_t>(i)] = run(s, a, b, c0, false);
  for (const auto& c : inside) CHECK(c == outside);
}
