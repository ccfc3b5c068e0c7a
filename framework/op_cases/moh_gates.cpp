// Op table rows: moh_gates (MoH's router). A row returns one tensor, so the outputs get rows of
// their own: the gates (with shared heads, with none, top-1, every routed head selected), the
// routed probabilities, and the two together (gradients from both outputs in one backward). K is
// a function of R in each row. The reference is a naive f64 loop over the definition; the
// selection sorts the probabilities. Normal logits of stddev 1.5 keep the K-th and (K+1)-th
// routed logits far apart beside the central differences' step (1e-6), so no check flips a
// selection. tests/kernels/test_moh_gates.cpp checks ties, equal logits and the errors.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "framework/op_cases/op_case.h"
#include "framework/ops.h"

namespace eat::op_cases {

namespace {

constexpr double kStddev = 1.5;

// Inputs: shared_logits [N, h_s], routed_logits [N, R], mix_logits [N, 2]; routed_logits alone
// when h_s = 0.
Sizes inputs(int64_t N, int64_t h_s, int64_t R) {
  if (h_s == 0) return {normal({N, R}, kStddev)};
  return {normal({N, h_s}, kStddev), normal({N, R}, kStddev), normal({N, 2}, kStddev)};
}

std::vector<double> softmax_of(const double* x, int64_t n) {
  const double m = *std::max_element(x, x + n);
  std::vector<double> y(x, x + n);
  double sum = 0;
  for (double& v : y) sum += (v = std::exp(v - m));
  for (double& v : y) v /= sum;
  return y;
}

// Both outputs by the definition, row by row.
struct Naive {
  std::vector<double> gates, probs;
};

Naive naive(const std::vector<Tensor>& in, int64_t K) {
  const bool shared = in.size() == 3;
  const Tensor& routed_t = shared ? in[1] : in[0];
  const int64_t R = routed_t.size(-1), N = routed_t.numel() / R, h_s = shared ? in[0].size(-1) : 0;
  const std::vector<double> routed = routed_t.to_f64_vector();
  const std::vector<double> sh = shared ? in[0].to_f64_vector() : std::vector<double>();
  const std::vector<double> mix = shared ? in[2].to_f64_vector() : std::vector<double>();
  Naive out;
  for (int64_t n = 0; n < N; ++n) {
    const std::vector<double> p = softmax_of(&routed[static_cast<size_t>(n * R)], R);
    std::vector<int64_t> order(static_cast<size_t>(R));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    double mass = 0;
    for (int64_t k = 0; k < K; ++k) mass += p[order[k]];
    double a0 = 0, a1 = 1;
    if (shared) {
      const std::vector<double> a = softmax_of(&mix[static_cast<size_t>(n * 2)], 2);
      a0 = 2 * a[0];
      a1 = 2 * a[1];
      const std::vector<double> q = softmax_of(&sh[static_cast<size_t>(n * h_s)], h_s);
      for (double qi : q) out.gates.push_back(a0 * static_cast<double>(h_s) * qi);
    }
    std::vector<double> routed_gates(static_cast<size_t>(R), 0.0);
    for (int64_t k = 0; k < K; ++k) routed_gates[order[k]] = a1 * static_cast<double>(K) * p[order[k]] / mass;
    out.gates.insert(out.gates.end(), routed_gates.begin(), routed_gates.end());
    out.probs.insert(out.probs.end(), p.begin(), p.end());
  }
  return out;
}

Shape rows_of(const std::vector<Tensor>& in, int64_t width) {
  Shape s = in[in.size() == 3 ? 1 : 0].shape();
  s.back() = width;
  return s;
}

MohGates call_op(const std::vector<Tensor>& in, int64_t K) {
  return in.size() == 3 ? moh_gates(in[0], in[1], in[2], K) : moh_gates(Tensor(), in[0], Tensor(), K);
}

using TopK = int64_t (*)(int64_t R);
int64_t half(int64_t R) { return (R + 1) / 2; }  // top-3 of 6: the 75% split of MoH-LLM-S
int64_t one(int64_t) { return 1; }
int64_t all(int64_t R) { return R; }

int64_t routed_of(const std::vector<Tensor>& in) { return in[in.size() == 3 ? 1 : 0].size(-1); }

// Which output a row returns.
enum class Output { gates, probs, gates_and_probs };

OpCase gates_row(std::string name, Output output, TopK top_k, bool shared) {
  OpCase row;
  row.name = std::move(name);
  row.call = [output, top_k](auto& in) {
    const MohGates g = call_op(in, top_k(routed_of(in)));
    if (output == Output::gates) return g.gates;
    if (output == Output::probs) return g.routed_probs;
    return add(g.gates, mul(g.routed_probs, g.routed_probs));  // h_s = 0: both [N, R]
  };
  row.reference = [output, top_k](auto& in) {
    const Naive r = naive(in, top_k(routed_of(in)));
    const int64_t h_s = in.size() == 3 ? in[0].size(-1) : 0, R = routed_of(in);
    if (output == Output::gates) return Tensor::from_vector<double>(r.gates, rows_of(in, h_s + R));
    if (output == Output::probs) return Tensor::from_vector<double>(r.probs, rows_of(in, R));
    std::vector<double> y = r.gates;
    for (size_t i = 0; i < y.size(); ++i) y[i] += r.probs[i] * r.probs[i];
    return Tensor::from_vector<double>(y, rows_of(in, R));
  };
  // h_s in {1, 2, 6} (or 0), R in {1, 3, 6, 9}, one token and a few, leading [B, T] dimensions.
  const int64_t h1 = shared ? 1 : 0, h2 = shared ? 2 : 0, h6 = shared ? 6 : 0;
  row.small = {inputs(1, h1, 1), inputs(5, h2, 3), inputs(4, h6, 6), inputs(3, h1, 9)};
  Sizes batched = inputs(3, h2, 6);
  for (Input& x : batched) x.shape.insert(x.shape.begin(), 2);  // [2, 3, .]
  row.small.push_back(batched);
  // MoH-LLM-S's splits (6 + top-3 of 6, 3 + top-3 of 9) and odd ones, rows past a block of threads.
  row.medium = {inputs(300, h6, 6), inputs(257, shared ? 3 : 0, 9), inputs(129, h1, 3), inputs(200, h2, 1)};
  // B = 8, T = 2048 tokens of MoH-LLM-S.
  row.bench = {inputs(8 * 2048, h6, 6), inputs(8 * 2048, shared ? 3 : 0, 9)};
  row.tol.reference = 1e-15;  // the same arithmetic in another order (up to 1.7e-16 seen)
  row.tol.f32 = 2e-7;         // f32 inputs and results, double inside (3.9e-8 to 5.1e-8 seen)
  return row;
}

}  // namespace

std::vector<OpCase> moh_gates_cases() {
  return {gates_row("moh_gates", Output::gates, half, true),
          gates_row("moh_gates top-1", Output::gates, one, true),
          gates_row("moh_gates all routed", Output::gates, all, true),
          gates_row("moh_gates routed_probs", Output::probs, half, true),
          gates_row("moh_gates no shared heads", Output::gates, half, false),
          gates_row("moh_gates gates + routed_probs", Output::gates_and_probs, half, false)};
}

}  // namespace eat::op_cases
