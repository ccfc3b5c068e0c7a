// Op table rows: the ops of a joined projection (framework/ops/joins.h).
#include <cmath>

#include "framework/flops.h"
#include "framework/op_cases/op_case.h"
#include "framework/ops/joins.h"

namespace eat::op_cases {

namespace {

double silu_of(double x) { return x / (1 + std::exp(-x)); }
double identity(double x) { return x; }

// act(a) * b over the two halves of each row of ab [..., 2n].
Tensor halves_reference(const Tensor& ab, double (*act)(double)) {
  const int64_t n = ab.size(-1) / 2;
  const std::vector<double> x = ab.to_f64_vector();
  std::vector<double> y;
  for (size_t row = 0; row < x.size(); row += static_cast<size_t>(2 * n))
    for (int64_t j = 0; j < n; ++j) y.push_back(act(x[row + j]) * x[row + n + j]);
  Shape shape = ab.shape();
  shape.back() = n;
  return Tensor::from_vector<double>(y, shape);
}

// Rows of one gate value, a small 3-D input, rows of 1300 (past a vectorised block of 1024, so a
// block ends inside a row), and SwiGLU's joined gate and up at the tiny recipes' width to time.
OpCase halves(std::string name, GateActivation act, double (*f)(double)) {
  OpCase row;
  row.name = std::move(name);
  row.call = [act](auto& in) { return glu_gate_halves(in[0], act); };
  row.reference = [f](auto& in) { return halves_reference(in[0], f); };
  row.small = {{normal({1, 2}, 2.0)}, {normal({2, 5, 6}, 2.0)}};
  row.medium = {{normal({37, 2600}, 2.0)}};
  row.bench = {{normal({4096, 1366}, 2.0)}};
  return row;
}

// x w^T by the triple loop, x [..., in] and w [out, in]: [..., out].
Tensor projection_reference(const Tensor& x, const Tensor& w) {
  const int64_t in = w.size(1), out = w.size(0), rows = x.numel() / in;
  const std::vector<double> xv = x.to_f64_vector(), wv = w.to_f64_vector();
  std::vector<double> y(static_cast<size_t>(rows * out));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < out; ++j) {
      double s = 0;
      for (int64_t p = 0; p < in; ++p) s += xv[static_cast<size_t>(i * in + p)] * wv[static_cast<size_t>(j * in + p)];
      y[static_cast<size_t>(i * out + j)] = s;
    }
  Shape shape = x.shape();
  shape.back() = out;
  return Tensor::from_vector<double>(y, shape);
}

// A gated MLP in one op: x [..., in], gate_up [2n, in], down [out, n], a residual [..., out]
// (or none). Medium: 70 rows of 300 into halves of 83 (the packed GEMM's path: its panels end
// inside each half) and down to 129, and 65 rows on the device; the bench is SwiGLU at the tiny
// recipes' width.
OpCase gated_mlp_row(std::string name, GateActivation act, double (*f)(double), bool onto) {
  auto sizes = [onto](Shape x, int64_t n, int64_t out, double stddev = 1.0) {
    Sizes s{normal(x), normal({2 * n, x.back()}, stddev), normal({out, n}, stddev)};
    Shape y = x;
    y.back() = out;
    if (onto) s.push_back(normal(y));
    return s;
  };
  OpCase row;
  row.name = std::move(name);
  row.call = [act, onto](auto& in) { return gated_mlp(in[0], in[1], in[2], onto ? in[3] : Tensor(), act); };
  row.reference = [f, onto](auto& in) {
    Tensor y = projection_reference(halves_reference(projection_reference(in[0], in[1]), f), in[2]);
    if (!onto) return y;
    std::vector<double> v = y.to_f64_vector();
    const std::vector<double> r = in[3].to_f64_vector();
    for (size_t i = 0; i < v.size(); ++i) v[i] += r[i];
    return Tensor::from_vector<double>(v, y.shape());
  };
  row.small = {sizes({1, 1}, 1, 1), sizes({2, 3, 5}, 4, 3)};
  row.medium = {sizes({70, 300}, 83, 129, 0.2), sizes({5, 13, 127}, 33, 40, 0.2)};
  row.bench = {sizes({4096, 256}, 683, 256, 0.05)};
  row.tol.f32 = 2e-6;  // the products' sums of up to 300 terms, and the gate between them
  row.flops = [](const std::vector<Shape>& s) {
    const int64_t in = s[0].back(), rows = shape_numel(s[0]) / in;
    return flops::linear(rows, in, s[1][0], flops::Pass::forward_backward) +
           flops::linear(rows, s[2][1], s[2][0], flops::Pass::forward_backward);
  };
  return row;
}

}  // namespace

std::vector<OpCase> join_cases() {
  std::vector<OpCase> rows;
  rows.push_back(halves("glu_gate_halves silu", GateActivation::silu, silu_of));
  rows.push_back(halves("glu_gate_halves none", GateActivation::none, identity));
  rows.push_back(gated_mlp_row("gated_mlp silu", GateActivation::silu, silu_of, false));
  rows.push_back(gated_mlp_row("gated_mlp silu onto a residual", GateActivation::silu, silu_of, true));
  rows.push_back(gated_mlp_row("gated_mlp none onto a residual", GateActivation::none, identity, true));
  // Three widths k, 1, k of x [..., 2k + 1]; the product of the outer two reaches the output, so
  // the gradient of the middle part arrives undefined and its columns must come back zero.
  OpCase split_row;
  split_row.name = "split_last";
  split_row.call = [](auto& in) {
    const int64_t k = in[0].size(-1) / 2;
    const std::vector<Tensor> parts = split_last(in[0], {k, 1, k});
    return mul(parts[0], parts[2]);
  };
  split_row.reference = [](auto& in) {
    const int64_t n = in[0].size(-1), k = n / 2;
    const std::vector<double> x = in[0].to_f64_vector();
    std::vector<double> y;
    for (size_t row = 0; row < x.size(); row += static_cast<size_t>(n))
      for (int64_t j = 0; j < k; ++j) y.push_back(x[row + j] * x[row + k + 1 + j]);
    Shape shape = in[0].shape();
    shape.back() = k;
    return Tensor::from_vector<double>(y, shape);
  };
  split_row.small = {{normal({1, 3})}, {normal({2, 5, 7})}};
  split_row.medium = {{normal({37, 259})}};
  split_row.bench = {{normal({4096, 1537})}};
  rows.push_back(std::move(split_row));
  // Two tensors that do not share a storage: the copy form (the view form has its own test).
  OpCase concat_row;
  concat_row.name = "concat_outer";
  concat_row.call = [](auto& in) { return concat_outer({in[0], in[1]}); };
  concat_row.reference = [](auto& in) {
    std::vector<double> y = in[0].to_f64_vector(), second = in[1].to_f64_vector();
    y.insert(y.end(), second.begin(), second.end());
    Shape shape = in[0].shape();
    shape[0] += in[1].size(0);
    return Tensor::from_vector<double>(y, shape);
  };
  concat_row.small = {{normal({1, 1}), normal({2, 1})}, {normal({2, 3, 2}), normal({3, 3, 2})}};
  concat_row.medium = {{normal({37, 129}), normal({20, 129})}};
  concat_row.bench = {{normal({768, 256}), normal({256, 256})}};
  concat_row.tol.f32 = 1e-7;  // copies
  rows.push_back(std::move(concat_row));
  return rows;
}

}  // namespace eat::op_cases
