// Op table rows: token embedding, RoPE, the causal short convolution and the fused cross-entropy.
#include <cmath>

#include "framework/flops.h"
#include "framework/op_cases/op_case.h"
#include "framework/op_cases/reference.h"
#include "framework/ops.h"
#include "framework/parallel/halo.h"

namespace eat::op_cases {

namespace {

// Three ids per row of the table (so rows repeat and some stay unused), for weight [V, D].
Tensor embedding_ids(const Tensor& weight) { return fixed_ids({3, weight.size(0)}, weight.size(0)); }

OpCase embedding_row() {
  OpCase row;
  row.name = "embedding";
  row.call = [](auto& in) { return embedding(embedding_ids(in[0]), in[0]); };
  row.reference = [](auto& in) {
    const Tensor ids = embedding_ids(in[0]);
    const std::vector<double> w = in[0].to_f64_vector();
    const int64_t D = in[0].size(1);
    std::vector<double> y;
    for (int64_t i = 0; i < ids.numel(); ++i) {
      const int64_t id = ids.data<int64_t>()[i];
      y.insert(y.end(), w.begin() + id * D, w.begin() + (id + 1) * D);
    }
    Shape shape = ids.shape();
    shape.push_back(D);
    return Tensor::from_vector<double>(y, shape);
  };
  row.small = {{normal({1, 3})}, {normal({7, 5})}};
  row.medium = {{normal({41, 129})}, {normal({7, 40})}};
  row.bench = {{normal({4096, 1024})}, {normal({32768, 1024})}};
  row.tol.f32 = 1e-7;  // copies and sums of a few rows (4.7e-8 measured)
  return row;
}

// Rotate-half RoPE at positions (offset + t) / chunk, base theta: token RoPE (chunk 1) and RAT's
// chunk-level RoPE (chunk 3: a position repeats, and the offset is not a multiple of the chunk).
constexpr double kTheta = 10000.0;
constexpr int64_t kOffset = 4099;  // far from 0, as a late sequence-parallel share

OpCase rope_row(int64_t chunk) {
  OpCase row;
  row.name = chunk == 1 ? "rope" : "rope chunk";
  row.call = [chunk](auto& in) { return rope(in[0], kTheta, kOffset, chunk); };
  row.reference = [chunk](auto& in) {
    const Tensor& x = in[0];
    const int64_t B = x.size(0), T = x.size(1), H = x.size(2), d = x.size(3);
    const std::vector<double> xv = x.to_f64_vector();
    std::vector<double> y(xv.size());
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t i = 0; i < d / 2; ++i) {
            const int64_t base = ((b * T + t) * H + h) * d;
            const double a = static_cast<double>((kOffset + t) / chunk) * std::pow(kTheta, -2.0 * static_cast<double>(i) / static_cast<double>(d));
            y[base + i] = xv[base + i] * std::cos(a) - xv[base + i + d / 2] * std::sin(a);
            y[base + i + d / 2] = xv[base + i + d / 2] * std::cos(a) + xv[base + i] * std::sin(a);
          }
    return Tensor::from_vector<double>(y, x.shape());
  };
  row.small = {{normal({1, 1, 1, 2})}, {normal({2, 3, 2, 4})}};
  row.medium = {{normal({1, 9, 2, 16})}, {normal({2, 37, 3, 66})}};
  row.bench = {{normal({1, 2048, 8, 64})}, {normal({4, 4096, 16, 128})}};
  return row;
}

// x [B, T, C], weight [C, k] and (with_bias) bias [C].
OpCase short_conv_row(bool with_bias) {
  auto sizes = [with_bias](int64_t B, int64_t T, int64_t C, int64_t k) {
    Sizes s{normal({B, T, C}), normal({C, k})};
    if (with_bias) s.push_back(normal({C}));
    return s;
  };
  auto bias_of = [](const std::vector<Tensor>& in) { return in.size() > 2 ? in[2] : Tensor(); };
  OpCase row;
  row.name = with_bias ? "short_conv" : "short_conv no bias";
  row.call = [bias_of](auto& in) { return short_conv(in[0], in[1], bias_of(in)); };
  row.sp = [bias_of](auto& in, Communicator& group) { return short_conv_sp(in[0], in[1], bias_of(in), group); };
  row.reference = [](auto& in) {
    const int64_t B = in[0].size(0), T = in[0].size(1), C = in[0].size(2), k = in[1].size(1);
    const std::vector<double> x = in[0].to_f64_vector(), w = in[1].to_f64_vector();
    const std::vector<double> bias = in.size() > 2 ? in[2].to_f64_vector() : std::vector<double>(static_cast<size_t>(C), 0.0);
    std::vector<double> y(x.size());
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c) {
          double s = bias[c];
          for (int64_t i = 0; i < k; ++i)
            if (t - k + 1 + i >= 0) s += w[c * k + i] * x[(b * T + t - k + 1 + i) * C + c];
          y[(b * T + t) * C + c] = s;
        }
    return Tensor::from_vector<double>(y, in[0].shape());
  };
  // One tap, one token, and taps reaching past the sequence start (k = 9 > T = 6).
  row.small = {sizes(1, 1, 3, 4), sizes(2, 6, 5, 1), sizes(2, 6, 5, 3), sizes(1, 6, 2, 9)};
  row.medium = {sizes(3, 50, 20, 4), sizes(3, 37, 129, 4)};
  row.bench = {sizes(1, 2048, 1024, 4), sizes(8, 4096, 1024, 4)};
  row.flops = [](const std::vector<Shape>& s) {
    return flops::short_conv(s[0][0], s[0][1], s[0][2], s[1][1], flops::Pass::forward_backward);
  };
  return row;
}

// Targets for logits [..., V]: every fourth position ignored.
Tensor targets_for(const Tensor& logits) {
  const Shape lead(logits.shape().begin(), logits.shape().end() - 1);
  return fixed_ids(lead, logits.size(-1), 4);
}

OpCase cross_entropy_row() {
  OpCase row;
  row.name = "cross_entropy";
  row.call = [](auto& in) { return cross_entropy(in[0], targets_for(in[0])); };
  row.reference = [](auto& in) {
    const Tensor targets = targets_for(in[0]);
    const std::vector<double> x = in[0].to_f64_vector();
    const int64_t V = in[0].size(-1);
    double loss = 0;
    int64_t counted = 0;
    for (int64_t i = 0; i < targets.numel(); ++i) {
      const int64_t t = targets.data<int64_t>()[i];
      if (t == -100) continue;
      double z = 0;
      for (int64_t j = 0; j < V; ++j) z += std::exp(x[i * V + j]);
      loss += std::log(z) - x[i * V + t];
      ++counted;
    }
    return Tensor::full({1}, counted ? loss / static_cast<double>(counted) : 0.0, DType::f64);
  };
  row.small = {{normal({6, 13}, 2.0)}, {normal({2, 3, 4}, 2.0)}};
  // 2085 logits a row: two full blocks of the CPU kernel's 1024 and a ragged one.
  row.medium = {{normal({6, 13}, 2.0)}, {normal({2, 37, 1000}, 3.0)}, {normal({3, 2085}, 3.0)}};
  row.bench = {{normal({1024, 8192})}, {normal({2048, 32768})}};
  return row;
}

}  // namespace

std::vector<OpCase> sequence_cases() {
  return {embedding_row(), rope_row(1), rope_row(3), short_conv_row(true), short_conv_row(false), cross_entropy_row()};
}

}  // namespace eat::op_cases
