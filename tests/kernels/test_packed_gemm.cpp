// packed_gemm (kernels/cpu/packed_gemm.h), the f32 GEMM behind cpu::gemm<float> on AVX-512 and
// AVX2 builds: against a triple loop in f64 on ragged shapes, every transpose, accumulate or not
// (C starting as NaN without it), both ways of meeting B (packed once and shared, or block by block
// per thread), and the promise about its bits: the same on any thread count, with either vector
// width (an AVX-512 build runs both kernels here), inside another parallel region, and for a row
// or a column whatever else is computed beside it.
#include <omp.h>

#include <algorithm>
#include <limits>
#include <random>
#include <vector>

#include "base/error.h"
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

// The kernel of `bits`-wide vectors (every width the build has is tested: an AVX-512 machine runs
// the AVX2 kernel too).
std::vector<float> run(const Product& s, const std::vector<float>& a, const std::vector<float>& b,
                       const std::vector<float>& c0, bool accumulate, int bits) {
  std::vector<float> c = accumulate ? c0 : std::vector<float>(c0.size(), std::numeric_limits<float>::quiet_NaN());
  cpu::packed_gemm(a.data(), b.data(), c.data(), s.m, s.n, s.k, s.trans_a, s.trans_b, accumulate, bits);
  return c;
}

std::vector<double> widened(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// Random A and B as stored for a product of shape s, and a starting C.
struct Operands {
  std::vector<float> a, b, c0;
};
Operands random_operands(const Product& s, unsigned seed) {
  return {random_floats(static_cast<size_t>(s.m * s.k), seed), random_floats(static_cast<size_t>(s.k * s.n), seed + 1),
          random_floats(static_cast<size_t>(s.m * s.n), seed + 2)};
}

}  // namespace

TEST_CASE("packed_gemm matches f64 on ragged shapes, every transpose, on 1, 2 and 3 threads with the same bits") {
  // m: whole and partial row tiles; n: whole and partial panels (one under a vector); k: one
  // inner block, and 385 / 1100 in 2 / 3 blocks. 1700 x 260 packs a B of 1.7 MB or more, past
  // what is kept in L2, so it is met block by block. k = 6000, as a weight gradient over the tokens
  // of a batch: one f32 chain over all of it read 1.4e-6 here, the blocked sums 3.6e-7.
  const std::vector<Product> shapes = {{13, 70, 300, false, true},    {100, 45, 385, false, false},
                                       {49, 257, 64, true, false},    {36, 33, 1100, true, true},
                                       {7, 9, 20, false, false},      {30, 260, 1700, true, false},
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
      const auto [a, b, c0] = random_operands(s, seed);
      seed += 3;
      const std::vector<double> ref = reference(s, a, b, c0, accumulate);
      std::vector<std::vector<float>> by_run;
      for (int bits : cpu::packed_gemm_widths())
        for (int threads : {1, 2, 3}) {
          CAPTURE(bits);
          CAPTURE(threads);
          omp_set_num_threads(threads);
          by_run.push_back(run(s, a, b, c0, accumulate, bits));
          // blocked f32 sums of up to 6000 products: 3.6e-7 seen
          CHECK(rel_error(widened(by_run.back()), ref) <= 1e-6);
          // Every thread count, and every vector width: an element's sums are the same.
          CHECK(by_run.back() == by_run.front());
        }
      omp_set_num_threads(threads_before);
    }
}

TEST_CASE("packed_gemm: a row's and a column's bits do not depend on what is computed beside them") {
  // Rows 5 .. 22 of A alone (a sequence slice), and columns 40 .. 79 of op(B) alone, against the
  // same elements of the whole product; the whole B (1700 x 260) is met block by block, the slice
  // of columns (1700 x 40) packed once and shared.
  const Product whole{60, 260, 1700, false, false};
  const auto [a, b, none] = random_operands(whole, 11);
  const int64_t r0 = 5, rows = 18, j0 = 40, cols = 40;
  const Product row_slice{rows, whole.n, whole.k, false, false}, col_slice{whole.m, cols, whole.k, false, false};
  const std::vector<float> a_rows(a.begin() + r0 * whole.k, a.begin() + (r0 + rows) * whole.k);
  std::vector<float> b_cols;
  for (int64_t p = 0; p < whole.k; ++p)
    b_cols.insert(b_cols.end(), b.begin() + p * whole.n + j0, b.begin() + p * whole.n + j0 + cols);
  for (int bits : cpu::packed_gemm_widths()) {
    CAPTURE(bits);
    const std::vector<float> c = run(whole, a, b, none, false, bits);
    const std::vector<float> c_rows = run(row_slice, a_rows, b, std::vector<float>(rows * whole.n), false, bits);
    CHECK(std::vector<float>(c.begin() + r0 * whole.n, c.begin() + (r0 + rows) * whole.n) == c_rows);
    const std::vector<float> c_cols = run(col_slice, a, b_cols, std::vector<float>(whole.m * cols), false, bits);
    bool same = true;
    for (int64_t i = 0; i < whole.m; ++i)
      for (int64_t j = 0; j < cols; ++j)
        same = same && c[static_cast<size_t>(i * whole.n + j0 + j)] == c_cols[static_cast<size_t>(i * cols + j)];
    CHECK(same);
  }
}

TEST_CASE("packed_gemm: a weight gradient with fewer rows than columns has the bits of its transpose") {
  // dW = dY^T X, 30 x 260 over 1700 tokens, runs as dW^T = X^T dY (the smaller operand packed by
  // every thread) and is transposed back: the same chains, so the same bits as asking for dW^T.
  const Product dw{30, 260, 1700, true, false}, dw_t{260, 30, 1700, true, false};
  const auto [dy, x, c0] = random_operands(dw, 31);
  for (int bits : cpu::packed_gemm_widths())
    for (bool accumulate : {false, true}) {
      CAPTURE(bits);
      CAPTURE(accumulate);
      std::vector<float> c0_t(c0.size());
      for (int64_t i = 0; i < dw.m; ++i)
        for (int64_t j = 0; j < dw.n; ++j) c0_t[static_cast<size_t>(j * dw.m + i)] = c0[static_cast<size_t>(i * dw.n + j)];
      const std::vector<float> c = run(dw, dy, x, c0, accumulate, bits);
      const std::vector<float> c_t = run(dw_t, x, dy, c0_t, accumulate, bits);
      bool same = true;
      for (int64_t i = 0; i < dw.m; ++i)
        for (int64_t j = 0; j < dw.n; ++j)
          same = same && c[static_cast<size_t>(i * dw.n + j)] == c_t[static_cast<size_t>(j * dw.m + i)];
      CHECK(same);
    }
}

TEST_CASE("packed_gemm_onto: R + the product with the bits of the product and then the add, C never read") {
  // k = 300 (one inner block) and 1100 (three, R added after the last); 70 columns: a partial panel.
  for (const Product& s : {Product{50, 70, 300, false, true}, Product{61, 70, 1100, false, false}})
    for (int bits : cpu::packed_gemm_widths()) {
      CAPTURE(s.k);
      CAPTURE(bits);
      const auto [a, b, r] = random_operands(s, 41);
      std::vector<float> want = run(s, a, b, r, false, bits);
      for (size_t i = 0; i < want.size(); ++i) want[i] = r[i] + want[i];
      std::vector<float> c(want.size(), std::numeric_limits<float>::quiet_NaN());
      cpu::packed_gemm_onto(a.data(), b.data(), r.data(), c.data(), s.m, s.n, s.k, s.trans_b, bits);
      CHECK(c == want);
    }
}

TEST_CASE("packed_gemm inside a parallel region (a batch of products) gives the bits it gives outside one") {
  const Product s{50, 70, 300, false, true};
  const auto [a, b, c0] = random_operands(s, 21);
  for (int bits : cpu::packed_gemm_widths()) {
    CAPTURE(bits);
    const std::vector<float> outside = run(s, a, b, c0, false, bits);
    std::vector<std::vector<float>> inside(4);
#pragma omp parallel for num_threads(2)
    for (int i = 0; i < 4; ++i) inside[static_cast<size_t>(i)] = run(s, a, b, c0, false, bits);
    for (const auto& c : inside) CHECK(c == outside);
  }
}

TEST_CASE("packed_gemm: the kernels a build has, and a width it lacks is refused by name") {
  const std::vector<int> widths = cpu::packed_gemm_widths();
  CHECK(cpu::packed_gemm_available() == !widths.empty());
#if defined(__AVX512F__)
  CHECK(widths == std::vector<int>{512, 256});
#elif defined(__AVX2__) && defined(__FMA__)
  CHECK(widths == std::vector<int>{256});
#endif
  std::vector<float> x(64 * 64), y(64 * 64);
  CHECK_THROWS_WITH_AS(cpu::packed_gemm(x.data(), x.data(), y.data(), 64, 64, 64, false, false, false, 128),
                       doctest::Contains("no 128-bit kernel"), Error);
}

TEST_CASE("packed_gemm_into_parts writes a joined projection's outputs apart, with the joined product's bits") {
  // Three parts of 64, 83 and 45 columns (the second not a whole number of panels: its last panel
  // is narrower, and the third's starts at its own first column), from a weight stored [N, K] as a
  // layer's is, and from a B [K, N]; every width the build has.
  const std::vector<int64_t> widths = {64, 83, 45};
  for (bool trans_b : {true, false}) {
    const Product whole{70, 192, 300, false, trans_b};
    const auto [a, b, c0] = random_operands(whole, 31);
    for (int bits : cpu::packed_gemm_widths()) {
      CAPTURE(trans_b);
      CAPTURE(bits);
      const std::vector<float> joined = run(whole, a, b, c0, false, bits);
      std::vector<std::vector<float>> parts;
      std::vector<float*> outs;
      for (int64_t w : widths) parts.emplace_back(static_cast<size_t>(whole.m * w), std::numeric_limits<float>::quiet_NaN());
      for (auto& p : parts) outs.push_back(p.data());
      cpu::packed_gemm_into_parts(a.data(), b.data(), outs, widths, whole.m, whole.k, false, trans_b, nullptr, bits);
      bool same = true;
      for (int64_t i = 0; i < whole.m; ++i)
        for (size_t part = 0, col = 0; part < widths.size(); col += static_cast<size_t>(widths[part++]))
          for (int64_t j = 0; j < widths[part]; ++j)
            same = same && parts[part][static_cast<size_t>(i * widths[part] + j)] ==
                               joined[static_cast<size_t>(i * whole.n) + col + static_cast<size_t>(j)];
      CHECK(same);
    }
  }
  if (cpu::packed_gemm_available()) {
    std::vector<float> x(64 * 64), y(64 * 104);
    CHECK_THROWS_WITH_AS(cpu::packed_gemm_into_parts(x.data(), x.data(), {y.data(), y.data()}, {40}, 64, 64, false,
                                                     false),
                         doctest::Contains("2 parts but 1 widths"), Error);
  }
}

TEST_CASE("packed_gemm_from_parts reads A's columns from parts: f64 agrees, and with trans_a the joined A's bits") {
  // Parts of 32, 64 and 45 columns: with trans_a they are C's rows, and the 12-row tiles at 24 and
  // 84 cross from one part into the next; without, they are the inner dimension.
  const std::vector<int64_t> widths = {32, 64, 45};
  const int64_t sum = 141, rows = 300, n = 70;
  for (bool trans_a : {false, true}) {
    const Product whole = trans_a ? Product{sum, n, rows, true, false} : Product{rows, n, sum, false, false};
    const auto [a, b, c0] = random_operands(whole, 41);
    // A's stored columns, split into the parts' own [rows, width] tensors.
    std::vector<std::vector<float>> parts;
    std::vector<const float*> ins;
    for (size_t i = 0, first = 0; i < widths.size(); first += static_cast<size_t>(widths[i++])) {
      parts.emplace_back();
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < widths[i]; ++j) parts.back().push_back(a[static_cast<size_t>(r * sum) + first + j]);
    }
    for (auto& p : parts) ins.push_back(p.data());
    for (bool accumulate : {false, true})
      for (int bits : cpu::packed_gemm_widths()) {
        CAPTURE(trans_a);
        CAPTURE(accumulate);
        CAPTURE(bits);
        std::vector<float> c = accumulate ? c0 : std::vector<float>(c0.size(), std::numeric_limits<float>::quiet_NaN());
        cpu::packed_gemm_from_parts(ins, widths, b.data(), c.data(), whole.m, whole.n, whole.k, trans_a, false,
                                    accumulate, bits);
        CHECK(rel_error(widened(c), reference(whole, a, b, c0, accumulate)) <= 1e-6);
        if (trans_a) CHECK(c == run(whole, a, b, c0, accumulate, bits));
      }
  }
  if (cpu::packed_gemm_available()) {
    std::vector<float> x(64 * 64), y(64 * 64);
    CHECK_THROWS_WITH_AS(cpu::packed_gemm_from_parts({x.data()}, {32}, x.data(), y.data(), 64, 64, 64, false, false,
                                                     false),
                         doctest::Contains("add up to 32, not to A's 64"), Error);
  }
}

TEST_CASE("packed_gemm_rows_done: the product's bits, and every row handed over once, when final") {
  // 70 rows of 166 columns (a panel ends inside a tile's columns) over two inner blocks (K 700),
  // with B packed once and shared; and 50 rows of 600 over 700 with B too large for L2 (met block
  // by block); on 1, 2 and 3 threads and every width the build has.
  struct Case {
    int64_t m, n, k;
  };
  const int threads_before = omp_get_max_threads();
  for (const Case& c : {Case{70, 166, 700}, Case{50, 600, 700}}) {
    const Product whole{c.m, c.n, c.k, false, true};
    const auto [a, b, c0] = random_operands(whole, 41);
    for (int bits : cpu::packed_gemm_widths())
      for (int threads : {1, 2, 3}) {
        CAPTURE(c.n);
        CAPTURE(bits);
        CAPTURE(threads);
        const std::vector<float> plain = run(whole, a, b, c0, false, bits);
        // What each call saw of its rows, and how often each row was handed over.
        struct Seen {
          const float* c;
          int64_t n;
          std::vector<float> rows;
          std::vector<int> calls;
          static void record(void* context, int64_t row, int64_t rows) {
            Seen& s = *static_cast<Seen*>(context);
            for (int64_t i = row; i < row + rows; ++i) {
              std::copy(s.c + i * s.n, s.c + (i + 1) * s.n, s.rows.begin() + i * s.n);
              ++s.calls[static_cast<size_t>(i)];
            }
          }
        };
        std::vector<float> out(plain.size(), std::numeric_limits<float>::quiet_NaN());
        Seen seen{out.data(), c.n, std::vector<float>(out.size()), std::vector<int>(static_cast<size_t>(c.m), 0)};
        omp_set_num_threads(threads);
        cpu::packed_gemm_rows_done(a.data(), b.data(), out.data(), c.m, c.n, c.k, true,
                                   cpu::RowsDone{&Seen::record, &seen}, bits);
        omp_set_num_threads(threads_before);
        CHECK(out == plain);
        CHECK(seen.calls == std::vector<int>(static_cast<size_t>(c.m), 1));
        CHECK(seen.rows == plain);
      }
  }
}
