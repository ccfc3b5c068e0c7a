// Op table rows: elementwise ops, reductions, activations, the GLU gate and softmax.
#include <cmath>

#include "framework/op_cases/op_case.h"
#include "framework/op_cases/reference.h"
#include "framework/ops.h"

namespace eat::op_cases {

namespace {

double sigmoid_of(double x) { return 1 / (1 + std::exp(-x)); }
double silu_of(double x) { return x * sigmoid_of(x); }

// A one-element input, a small 3-D one, a ragged 2-D one past the vectorised blocks of 1024, and
// a large one to time.
OpCase elementwise(std::string name, int arity, double stddev, Call call, Call reference) {
  auto sizes = [&](Shape shape) { return Sizes(static_cast<size_t>(arity), normal(shape, stddev)); };
  OpCase row;
  row.name = std::move(name);
  row.call = std::move(call);
  row.reference = std::move(reference);
  row.small = {sizes({1}), sizes({2, 5, 3})};
  row.medium = {sizes({37, 129})};
  row.bench = {sizes({1024, 1024}), sizes({4096, 4096})};
  return row;
}

OpCase unary(std::string name, double stddev, Tensor (*op)(const Tensor&), double (*f)(double)) {
  return elementwise(std::move(name), 1, stddev, [op](auto& in) { return op(in[0]); },
                     [f](auto& in) { return map_values(in[0], f); });
}

// Sums over positive values: a relative error on a sum that cancels to nearly zero would measure
// the cancellation, not the kernel.
OpCase reduction(std::string name, Tensor (*op)(const Tensor&), bool mean_of) {
  OpCase row;
  row.name = std::move(name);
  row.call = [op](auto& in) { return op(in[0]); };
  row.reference = [mean_of](auto& in) {
    double s = 0;
    for (double v : in[0].to_f64_vector()) s += v;
    return Tensor::full({1}, mean_of ? s / static_cast<double>(in[0].numel()) : s, DType::f64);
  };
  row.small = {{positive({1})}, {positive({2, 5, 3})}};
  row.medium = {{positive({37, 129})}};
  row.bench = {{positive({1024, 1024})}, {positive({4096, 4096})}};
  return row;
}

}  // namespace

std::vector<OpCase> pointwise_cases() {
  std::vector<OpCase> rows;
  rows.push_back(elementwise("add", 2, 1.0, [](auto& in) { return add(in[0], in[1]); },
                             [](auto& in) { return zip_values(in[0], in[1], [](double a, double b) { return a + b; }); }));
  rows.push_back(elementwise("mul", 2, 1.0, [](auto& in) { return mul(in[0], in[1]); },
                             [](auto& in) { return zip_values(in[0], in[1], [](double a, double b) { return a * b; }); }));
  rows.push_back(elementwise("scale", 1, 1.0, [](auto& in) { return scale(in[0], -1.5); },
                             [](auto& in) { return map_values(in[0], [](double a) { return -1.5 * a; }); }));
  rows.push_back(reduction("sum", sum, false));
  rows.push_back(reduction("mean", mean, true));
  rows.push_back(unary("silu", 2.0, silu, silu_of));
  rows.push_back(unary("sigmoid", 2.0, sigmoid, sigmoid_of));
  rows.push_back(elementwise("gelu", 1, 2.0, [](auto& in) { return gelu(in[0]); },
                             [](auto& in) {
                               return map_values(in[0], [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); });
                             }));
  rows.push_back(elementwise("gelu tanh", 1, 2.0, [](auto& in) { return gelu(in[0], GeluApprox::tanh); },
                             [](auto& in) {
                               return map_values(in[0], [](double x) {
                                 return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
                               });
                             }));
  rows.push_back(elementwise("glu_gate silu", 2, 2.0, [](auto& in) { return glu_gate(in[0], in[1], GateActivation::silu); },
                             [](auto& in) { return zip_values(in[0], in[1], [](double a, double b) { return silu_of(a) * b; }); }));
  rows.push_back(elementwise("glu_gate none", 2, 2.0, [](auto& in) { return glu_gate(in[0], in[1], GateActivation::none); },
                             [](auto& in) { return zip_values(in[0], in[1], [](double a, double b) { return a * b; }); }));
  // Three copies of the last axis (RAT's q/k groups shared among heads); the gradient sums them.
  OpCase tile_row;
  tile_row.name = "tile_last";
  tile_row.call = [](auto& in) { return tile_last(in[0], 3); };
  tile_row.reference = [](auto& in) {
    const int64_t n = in[0].size(in[0].dim() - 1);
    const std::vector<double> x = in[0].to_f64_vector();
    std::vector<double> y;
    for (size_t i = 0; i < x.size(); i += static_cast<size_t>(n))
      for (int r = 0; r < 3; ++r) y.insert(y.end(), x.begin() + static_cast<int64_t>(i), x.begin() + static_cast<int64_t>(i) + n);
    Shape shape = in[0].shape();
    shape.back() *= 3;
    return Tensor::from_vector<double>(y, shape);
  };
  tile_row.small = {{normal({1, 1})}, {normal({2, 3, 4})}};
  tile_row.medium = {{normal({3, 37, 129})}, {normal({5, 128})}};
  tile_row.bench = {{normal({8, 4096, 128})}};
  tile_row.tol.f32 = 1e-7;  // copies, and sums of three copies
  rows.push_back(std::move(tile_row));
  // Softmax over the last dimension: rows of one element, of a few, and past a block of threads.
  OpCase softmax_row;
  softmax_row.name = "softmax";
  softmax_row.call = [](auto& in) { return softmax(in[0]); };
  softmax_row.reference = [](auto& in) {
    return map_rows(in[0], [](double* row, int64_t n) {
      double z = 0;
      for (int64_t j = 0; j < n; ++j) z += std::exp(row[j]);
      for (int64_t j = 0; j < n; ++j) row[j] = std::exp(row[j]) / z;
    });
  };
  softmax_row.small = {{normal({2, 1}, 2.0)}, {normal({3, 7}, 2.0)}};
  softmax_row.medium = {{normal({3, 37, 129}, 3.0)}, {normal({5, 1000}, 3.0)}};
  softmax_row.bench = {{normal({1024, 1024})}, {normal({4096, 4096})}};
  rows.push_back(std::move(softmax_row));
  return rows;
}

}  // namespace eat::op_cases
