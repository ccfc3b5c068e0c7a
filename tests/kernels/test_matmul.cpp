#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

namespace {

// Naive reference: C = op(A) op(B) per batch, in double. B may be 2-D (shared).
std::vector<double> naive_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  auto av = a.to_f64_vector(), bv = b.to_f64_vector();
  int64_t m = ta ? a.size(-1) : a.size(-2), k = ta ? a.size(-2) : a.size(-1);
  int64_t n = tb ? b.size(-2) : b.size(-1);
  int64_t batch = a.numel() / (m * k);
  bool shared = b.dim() == 2;
  std::vector<double> c(static_cast<size_t>(batch * m * n), 0.0);
  for (int64_t z = 0; z < batch; ++z) {
    const double* A = av.data() + z * m * k;
    const double* B = bv.data() + (shared ? 0 : z * k * n);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) s += (ta ? A[p * m + i] : A[i * k + p]) * (tb ? B[j * k + p] : B[p * n + j]);
        c[static_cast<size_t>((z * m + i) * n + j)] = s;
      }
  }
  return c;
}

}  // namespace

TEST_CASE("matmul: forward against a naive product, every transpose and batch form") {
  Generator gen(10);
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (bool shared : {false, true}) {
        const int64_t batch = 3, m = 5, k = 7, n = 4;
        Tensor a = randn64(ta ? Shape{batch, k, m} : Shape{batch, m, k}, gen, 1.0, false);
        Shape bs = tb ? Shape{n, k} : Shape{k, n};
        if (!shared) bs.insert(bs.begin(), batch);
        Tensor b = randn64(bs, gen, 1.0, false);
        Tensor c = matmul(a, b, ta, tb);
        CHECK(c.shape() == Shape{batch, m, n});
        CHECK(rel_error(c.to_f64_vector(), naive_matmul(a, b, ta, tb)) < 1e-14);
      }
}

TEST_CASE("matmul: gradient checks, every transpose and batch form") {
  Generator gen(11);
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (bool shared : {false, true}) {
        const int64_t batch = 2, m = 3, k = 4, n = 5;
        Tensor a = randn64(ta ? Shape{batch, k, m} : Shape{batch, m, k}, gen);
        Shape bs = tb ? Shape{n, k} : Shape{k, n};
        if (!shared) bs.insert(bs.begin(), batch);
        Tensor b = randn64(bs, gen);
        CAPTURE(ta);
        CAPTURE(tb);
        CAPTURE(shared);
        CHECK(gradcheck("matmul", [ta, tb](auto& in) { return matmul(in[0], in[1], ta, tb); }, {a, b}) <= 1.0);
      }
  // Batch 1 and a single row.
  Tensor a = randn64({1, 1, 6}, gen), b = randn64({1, 6, 1}, gen);
  CHECK(gradcheck("matmul 1x1", [](auto& in) { return matmul(in[0], in[1]); }, {a, b}) <= 1.0);
}

TEST_CASE("linear: forward, gradient checks with and without bias, f32 vs f64") {
  Generator gen(12);
  Tensor x = randn64({2, 3, 5}, gen), w = randn64({4, 5}, gen), b = randn64({4}, gen);
  Tensor y = linear(x, w, b);
  CHECK(y.shape() == Shape{2, 3, 4});
  auto ref = naive_matmul(x.detach().reshape({6, 5}), w.detach(), false, true);
  auto bv = b.to_f64_vector();
  for (size_t i = 0; i < ref.size(); ++i) ref[i] += bv[i % 4];
  CHECK(rel_error(y.to_f64_vector(), ref) < 1e-14);
  CHECK(gradcheck("linear+bias", [](auto& in) { return linear(in[0], in[1], in[2]); }, {x, w, b}) <= 1.0);
  CHECK(gradcheck("linear", [](auto& in) { return linear(in[0], in[1]); }, {x, w}) <= 1.0);
  Tensor x1 = randn64({1, 1}, gen), w1 = randn64({1, 1}, gen);
  CHECK(gradcheck("linear 1x1", [](auto& in) { return linear(in[0], in[1]); }, {x1, w1}) <= 1.0);
  // f32 against f64 on a size where GEMM blocking kicks in: relative error at f32 rounding level.
  Tensor xb = randn64({70, 300}, gen), wb = randn64({129, 300}, gen), bb = randn64({129}, gen);
  CHECK(f32_vs_f64([](auto& in) { return linear(in[0], in[1], in[2]); }, {xb, wb, bb}) < 1e-5);
}

TEST_CASE("linear and matmul: shape errors name the op and the shapes") {
  Tensor x = Tensor::zeros({2, 5}), w = Tensor::zeros({4, 6});
  CHECK_THROWS_WITH_AS(linear(x, w), doctest::Contains("linear: input [2, 5] does not end in 6"), Error);
  CHECK_THROWS_WITH_AS(linear(x, Tensor::zeros({4, 5}), Tensor::zeros({3})), doctest::Contains("bias [3]"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})), doctest::Contains("inner dimensions differ"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 5})), doctest::Contains("batch dimensions differ"), Error);
}
