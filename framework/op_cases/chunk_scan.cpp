// Op table rows: chunk_scan (RAT), in training (phase 0), decoding (a phase inside a chunk and an
// initial state), and its two reductions: chunk 1 (h = (1 - g) x) and one chunk longer than the
// sequence (a plain gated recurrence). The reference walks the tokens one by one in f64.
#include <cmath>

#include "framework/op_cases/op_case.h"
#include "framework/ops.h"

namespace eat::op_cases {

namespace {

// x, gate_logit [B, T, C], and initial [B, C] when decoding.
Sizes scan_inputs(int64_t B, int64_t T, int64_t C, bool with_initial) {
  Sizes s{normal({B, T, C}), normal({B, T, C}, 2.0)};
  if (with_initial) s.push_back(normal({B, C}));
  return s;
}

Tensor initial_of(const std::vector<Tensor>& in) { return in.size() > 2 ? in[2] : Tensor(); }

// h_t = g_t h_{t-1} + (1 - g_t) x_t token by token, the state zeroed where (phase + t) % chunk == 0.
Tensor reference_scan(const std::vector<Tensor>& in, int64_t chunk, int64_t phase) {
  const int64_t B = in[0].size(0), T = in[0].size(1), C = in[0].size(2);
  const std::vector<double> x = in[0].to_f64_vector(), logit = in[1].to_f64_vector();
  const std::vector<double> initial =
      in.size() > 2 ? in[2].to_f64_vector() : std::vector<double>(static_cast<size_t>(B * C), 0.0);
  std::vector<double> h(x.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      double state = initial[b * C + c];
      for (int64_t t = 0; t < T; ++t) {
        if ((phase + t) % chunk == 0) state = 0;
        const int64_t i = (b * T + t) * C + c;
        const double g = 1 / (1 + std::exp(-logit[i]));
        state = g * state + (1 - g) * x[i];
        h[i] = state;
      }
    }
  return Tensor::from_vector<double>(h, in[0].shape());
}

OpCase scan_row(std::string name, int64_t chunk, int64_t phase, bool with_initial) {
  OpCase row;
  row.name = std::move(name);
  row.call = [=](auto& in) { return chunk_scan(in[0], in[1], chunk, initial_of(in), phase); };
  row.reference = [=](auto& in) { return reference_scan(in, chunk, phase); };
  auto sizes = [=](int64_t B, int64_t T, int64_t C) { return scan_inputs(B, T, C, with_initial); };
  // One token; T not a multiple of the chunk with one channel; batch 1 over several chunks.
  row.small = {sizes(1, 1, 3), sizes(2, 19, 1), sizes(1, 40, 3)};
  row.medium = {sizes(3, 50, 20), sizes(2, 37, 129)};
  row.bench = {sizes(8, 4096, 768), sizes(1, 16384, 1536)};
  row.tol.reference = 1e-15;  // the same recurrence in the same order; the gate's exp differs by an ulp (5e-17 seen)
  row.tol.f32 = 5e-7;         // f32 rounding along a chunk of up to 50 tokens (1.3e-7 seen)
  return row;
}

}  // namespace

std::vector<OpCase> chunk_scan_cases() {
  return {
      scan_row("chunk_scan", 16, 0, false),
      // Token 0 is the 6th of its chunk: the first segment is 11 tokens long and starts from initial.
      scan_row("chunk_scan decoding", 16, 21, true),
      scan_row("chunk_scan chunk 1", 1, 0, false),
      scan_row("chunk_scan one chunk", int64_t{1} << 40, 0, false),
  };
}

}  // namespace eat::op_cases
