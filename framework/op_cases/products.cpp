// Op table rows: linear maps and batched matmul in every transpose and batch form.
#include "framework/flops.h"
#include "framework/op_cases/op_case.h"
#include "framework/ops.h"

namespace eat::op_cases {

namespace {

// C = op(A) op(B) per batch by the triple loop; B may be 2-D (shared by every batch).
Tensor matmul_reference(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const std::vector<double> av = a.to_f64_vector(), bv = b.to_f64_vector();
  const int64_t m = ta ? a.size(-1) : a.size(-2), k = ta ? a.size(-2) : a.size(-1), n = tb ? b.size(-2) : b.size(-1);
  const int64_t batch = a.numel() / (m * k);
  const bool shared = b.dim() == 2;
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
  Shape shape(a.shape().begin(), a.shape().end() - 2);
  shape.push_back(m);
  shape.push_back(n);
  return Tensor::from_vector<double>(c, shape);
}

// linear with or without a bias, and with or without a residual it writes onto (the last input).
OpCase linear_row(bool with_bias, bool onto = false) {
  auto sizes = [&](Shape x, int64_t out, double stddev = 1.0) {
    Sizes s{normal(x), normal({out, x.back()}, stddev)};
    if (with_bias) s.push_back(normal({out}));
    Shape y = x;
    y.back() = out;
    if (onto) s.push_back(normal(y));
    return s;
  };
  OpCase row;
  row.name = with_bias ? "linear" : "linear no bias";
  if (onto) row.name += " onto a residual";
  row.call = [with_bias, onto](auto& in) {
    const Tensor bias = with_bias ? in[2] : Tensor(), residual = onto ? in.back() : Tensor();
    return linear(in[0], in[1], bias, residual);
  };
  row.reference = [with_bias, onto](auto& in) {
    Tensor y = matmul_reference(reshape(in[0], {-1, in[0].size(-1)}), in[1], false, true);
    std::vector<double> v = y.to_f64_vector();
    if (with_bias) {
      const std::vector<double> b = in[2].to_f64_vector();
      for (size_t i = 0; i < v.size(); ++i) v[i] += b[i % b.size()];
    }
    if (onto) {
      const std::vector<double> r = in.back().to_f64_vector();
      for (size_t i = 0; i < v.size(); ++i) v[i] += r[i];
    }
    Shape shape = in[0].shape();
    shape.back() = in[1].size(0);
    return reshape(Tensor::from_vector<double>(v, y.shape()), shape);
  };
  // 1 x 1, a 3-D input; f32 where GEMM blocking starts (70 x 300 -> 129); 65 rows on the device.
  row.small = {sizes({1, 1}, 1), sizes({2, 3, 5}, 4)};
  row.medium = {sizes({70, 300}, 129), sizes({5, 13, 127}, 33)};
  // A transformer MLP's up-projection: 1024 and 4096 tokens, 768 -> 3072.
  row.bench = {sizes({1024, 768}, 3072, 0.02), sizes({4096, 768}, 3072, 0.02)};
  row.tol.f32 = 2e-6;  // sums of 300 products in f32 (3.2e-7 measured)
  row.flops = [](const std::vector<Shape>& s) {
    const int64_t in = s[0].back();
    return flops::linear(shape_numel(s[0]) / in, in, s[1][0], flops::Pass::forward_backward);
  };
  return row;
}

// Shapes of A [batch..., m, k] and B [batch..., k, n] (B 2-D when shared), transposed as asked.
Sizes matmul_sizes(const Shape& batch, int64_t m, int64_t k, int64_t n, bool ta, bool tb, bool shared) {
  Shape a = batch, b = shared ? Shape{} : batch;
  for (int64_t x : ta ? Shape{k, m} : Shape{m, k}) a.push_back(x);
  for (int64_t x : tb ? Shape{n, k} : Shape{k, n}) b.push_back(x);
  return {normal(a), normal(b)};
}

OpCase matmul_row(bool ta, bool tb, bool shared) {
  OpCase row;
  row.name = "matmul";
  if (ta) row.name += " ta";
  if (tb) row.name += " tb";
  if (shared) row.name += " shared";
  row.call = [ta, tb](auto& in) { return matmul(in[0], in[1], ta, tb); };
  row.reference = [ta, tb](auto& in) { return matmul_reference(in[0], in[1], ta, tb); };
  row.small = {matmul_sizes({1}, 1, 6, 1, ta, tb, shared), matmul_sizes({2}, 3, 4, 5, ta, tb, shared)};
  row.medium = {matmul_sizes({2, 3}, 65, 127, 33, ta, tb, shared)};
  // Square products timed once, in the plain form (the others run the same GEMM).
  if (!ta && !tb && !shared) row.bench = {matmul_sizes({}, 512, 512, 512, false, false, true),
                                          matmul_sizes({}, 1024, 1024, 1024, false, false, true),
                                          matmul_sizes({}, 2048, 2048, 2048, false, false, true)};
  row.tol.f32 = 2e-6;  // sums of 127 products in f32 (3.4e-7 measured)
  row.flops = [ta](const std::vector<Shape>& s) {
    const Shape& a = s[0];
    const int64_t m = ta ? a.back() : a[a.size() - 2], k = ta ? a[a.size() - 2] : a.back();
    const int64_t n = shape_numel(s[1]) / (s[1].size() == 2 ? k : shape_numel(a) / (m * k) * k);
    return flops::matmul(shape_numel(a) / (m * k), m, k, n, flops::Pass::forward_backward);
  };
  return row;
}

}  // namespace

std::vector<OpCase> product_cases() {
  std::vector<OpCase> rows{linear_row(true), linear_row(false), linear_row(false, true), linear_row(true, true)};
  for (int flags = 0; flags < 8; ++flags) rows.push_back(matmul_row(flags & 1, flags & 2, flags & 4));
  return rows;
}

}  // namespace eat::op_cases
