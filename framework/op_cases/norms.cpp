// Op table rows: normalisation over the last dimension (RMSNorm, SimpleRMSNorm, L2).
#include <cmath>

#include "framework/op_cases/op_case.h"
#include "framework/op_cases/reference.h"
#include "framework/ops.h"

namespace eat::op_cases {

namespace {

// x / sqrt(mean(x^2) + eps), times weight when there is one.
Tensor rms_reference(const Tensor& x, const Tensor& weight, double eps) {
  const std::vector<double> w = weight.defined() ? weight.to_f64_vector() : std::vector<double>();
  return map_rows(x, [&](double* row, int64_t n) {
    double ss = 0;
    for (int64_t j = 0; j < n; ++j) ss += row[j] * row[j];
    const double inv = 1 / std::sqrt(ss / static_cast<double>(n) + eps);
    for (int64_t j = 0; j < n; ++j) row[j] *= inv * (w.empty() ? 1.0 : w[static_cast<size_t>(j)]);
  });
}

// What multiplies the normalised rows: nothing, a weight per column, or a gate of x's shape.
enum class Times { none, weight, gate };

// Rows of one element, an odd width, and (medium) many rows, so the weight gradient sums over
// them, at widths below a warp and past a block of threads.
OpCase norm_row(std::string name, Times times, Call call, Call reference) {
  auto sizes = [&](Shape shape, double stddev) {
    Sizes s{normal(shape, stddev)};
    if (times == Times::weight) s.push_back(normal({shape.back()}));
    if (times == Times::gate) s.push_back(normal(shape));
    return s;
  };
  OpCase row;
  row.name = std::move(name);
  row.call = std::move(call);
  row.reference = std::move(reference);
  row.small = {sizes({1, 1}, 1.0), sizes({2, 3, 13}, 2.0)};
  row.medium = {sizes({300, 40}, 1.0), sizes({3, 37, 129}, 1.0), sizes({2, 1000}, 1.0)};
  row.bench = {sizes({4096, 1024}, 1.0), sizes({16384, 2048}, 1.0)};
  return row;
}

}  // namespace

std::vector<OpCase> norm_cases() {
  const double eps = 1e-5;
  std::vector<OpCase> rows;
  rows.push_back(norm_row("rms_norm", Times::weight, [eps](auto& in) { return rms_norm(in[0], in[1], eps); },
                          [eps](auto& in) { return rms_reference(in[0], in[1], eps); }));
  rows.push_back(norm_row("simple_rms_norm", Times::none, [eps](auto& in) { return simple_rms_norm(in[0], eps); },
                          [eps](auto& in) { return rms_reference(in[0], Tensor(), eps); }));
  rows.push_back(norm_row(
      "simple_rms_norm_gate", Times::gate, [eps](auto& in) { return simple_rms_norm_gate(in[0], in[1], eps); },
      [eps](auto& in) {
        std::vector<double> y = rms_reference(in[0], Tensor(), eps).to_f64_vector();
        const std::vector<double> u = in[1].to_f64_vector();
        for (size_t i = 0; i < y.size(); ++i) y[i] *= u[i];
        return Tensor::from_vector<double>(y, in[0].shape());
      }));
  // eps = 0.05 is above the norm of a one-element row now and then: both sides of the max.
  const double l2_eps = 0.05;
  rows.push_back(norm_row("l2_normalize", Times::none, [l2_eps](auto& in) { return l2_normalize(in[0], l2_eps); },
                          [l2_eps](auto& in) {
                            return map_rows(in[0], [l2_eps](double* row, int64_t n) {
                              double ss = 0;
                              for (int64_t j = 0; j < n; ++j) ss += row[j] * row[j];
                              const double norm = std::max(std::sqrt(ss), l2_eps);
                              for (int64_t j = 0; j < n; ++j) row[j] /= norm;
                            });
                          }));
  return rows;
}

}  // namespace eat::op_cases
