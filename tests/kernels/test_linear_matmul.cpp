// linear and matmul beyond the op table's rows (test_op_table.cpp, every transpose and batch form):
// the shape errors, and the weight gradient's split product.
#include <omp.h>

#include <limits>

#include "base/error.h"
#include "base/random.h"
#include "gradcheck.h"
#include "kernels/matmul.h"
#include "rel_error.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("linear and matmul: shape errors name the op and the shapes") {
  Tensor x = Tensor::zeros({2, 5}), w = Tensor::zeros({4, 6});
  CHECK_THROWS_WITH_AS(linear(x, w), doctest::Contains("linear: input [2, 5] does not end in 6"), Error);
  CHECK_THROWS_WITH_AS(linear(x, Tensor::zeros({4, 5}), Tensor::zeros({3})), doctest::Contains("bias [3]"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})), doctest::Contains("inner dimensions differ"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 5})), doctest::Contains("batch dimensions differ"), Error);
}

TEST_CASE("a weight gradient's product over many rows (the inner dimension split in parts) matches f64, on any thread count") {
  // C [m, n] (+)= A^T B with A [k, m] and B [k, n]: k = 4099 rows split in 8 parts of 513 and a
  // last one of 508, as dW = dY^T X over the tokens of a batch.
  const int64_t m = 24, n = 40, k = 4099;
  Generator gen(41);
  const Tensor a = Tensor::randn({k, m}, gen), b = Tensor::randn({k, n}, gen), c0 = Tensor::randn({m, n}, gen);
  const std::vector<double> av = a.to_f64_vector(), bv = b.to_f64_vector(), cv = c0.to_f64_vector();
  const int threads_before = omp_get_max_threads();
  for (bool accumulate : {false, true}) {
    CAPTURE(accumulate);
    std::vector<double> ref(static_cast<size_t>(m * n));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = accumulate ? cv[static_cast<size_t>(i * n + j)] : 0.0;
        for (int64_t r = 0; r < k; ++r) s += av[static_cast<size_t>(r * m + i)] * bv[static_cast<size_t>(r * n + j)];
        ref[static_cast<size_t>(i * n + j)] = s;
      }
    std::vector<std::vector<double>> by_threads;
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      Tensor c = c0.clone();
      cpu::gemm<float>(a.data<float>(), b.data<float>(), c.data<float>(), m, n, k, true, false, accumulate);
      by_threads.push_back(c.to_f64_vector());
      CHECK(rel_error(by_threads.back(), ref) <= 1e-6);  // f32 sums of 513 products: 3.8e-7 seen
    }
    omp_set_num_threads(threads_before);
    CHECK(by_threads[1] == by_threads[0]);
    CHECK(by_threads[2] == by_threads[0]);
  }
}

TEST_CASE("a product over many rows (a layer's tokens, in fixed blocks of rows) matches f64, on any thread count, without reading C") {
  // C [m, n] (+)= A op(B): m = 700 rows (two blocks of 256 and a ragged one), n = 70, k = 300; B
  // stored [k, n], or [n, k] as a layer's weight. Without accumulate C starts as NaN, which must
  // not leak through.
  const int64_t m = 700, n = 70, k = 300;
  Generator gen(42);
  const Tensor a = Tensor::randn({m, k}, gen), b = Tensor::randn({k, n}, gen), bt = Tensor::randn({n, k}, gen),
               c0 = Tensor::randn({m, n}, gen);
  const std::vector<double> av = a.to_f64_vector(), cv = c0.to_f64_vector();
  const int threads_before = omp_get_max_threads();
  for (bool trans_b : {false, true})
    for (bool accumulate : {false, true}) {
      CAPTURE(trans_b);
      CAPTURE(accumulate);
      const std::vector<double> bv = (trans_b ? bt : b).to_f64_vector();
      std::vector<double> ref(static_cast<size_t>(m * n));
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double s = accumulate ? cv[static_cast<size_t>(i * n + j)] : 0.0;
          for (int64_t p = 0; p < k; ++p)
            s += av[static_cast<size_t>(i * k + p)] * bv[static_cast<size_t>(trans_b ? j * k + p : p * n + j)];
          ref[static_cast<size_t>(i * n + j)] = s;
        }
      std::vector<std::vector<double>> by_threads;
      for (int threads : {1, 2, 3}) {
        omp_set_num_threads(threads);
        Tensor c = accumulate ? c0.clone() : Tensor::full({m, n}, std::numeric_limits<float>::quiet_NaN());
        cpu::gemm<float>(a.data<float>(), (trans_b ? bt : b).data<float>(), c.data<float>(), m, n, k, false, trans_b,
                         accumulate);
        by_threads.push_back(c.to_f64_vector());
        CHECK(rel_error(by_threads.back(), ref) <= 1e-6);
      }
      omp_set_num_threads(threads_before);
      CHECK(by_threads[1] == by_threads[0]);
      CHECK(by_threads[2] == by_threads[0]);
    }
}
