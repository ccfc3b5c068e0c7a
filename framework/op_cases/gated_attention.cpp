// Op table rows: gated_attention (MoH's query-sparse attention with gated heads): every gate
// non-zero (softmax attention times the gates), 75% and 50% of the (token, head) pairs active,
// with a sliding window, and the queries of a later sequence-parallel rank (query_offset, longer
// keys). The zero gates are placed inside the call by a fixed 0/1 pattern multiplying the drawn
// gates, so the gradient check differentiates the drawn gates through it (dgate = 0 where the
// pattern is 0). The reference is a naive f64 loop over the definition.
#include <algorithm>
#include <cmath>
#include <vector>

#include "framework/flops.h"
#include "framework/op_cases/op_case.h"
#include "framework/ops.h"

namespace eat::op_cases {

namespace {

// Which (b, t, h) pairs are active: `on` of every `period` along a pattern that differs between
// heads and batches (period 1: all).
struct Pattern {
  int64_t period = 1, on = 1;
  bool active(int64_t b, int64_t t, int64_t h) const { return (t * 5 + h * 3 + b * 7) % period < on; }
};

// q [B, T, H, d], k [B, Tk, H, d], v [B, Tk, H, e], gates [B, T, H].
Sizes inputs(int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, int64_t Tk = 0) {
  if (Tk == 0) Tk = T;
  return {normal({B, T, H, d}), normal({B, Tk, H, d}), normal({B, Tk, H, e}), normal({B, T, H})};
}

// The pattern as a 0/1 tensor like the gates (dtype and device).
Tensor pattern_mask(const Tensor& gates, const Pattern& pattern) {
  const int64_t B = gates.size(0), T = gates.size(1), H = gates.size(2);
  std::vector<double> mask(static_cast<size_t>(B * T * H));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) mask[static_cast<size_t>((b * T + t) * H + h)] = pattern.active(b, t, h);
  return Tensor::from_vector<double>(mask, gates.shape()).to(gates.dtype()).to(gates.device());
}

// Keys [first, last] of query t (options' band at key length nk).
struct Band {
  const AttentionOptions& o;
  int64_t nk;
  int64_t first(int64_t t) const {
    return o.causal && o.window_left >= 0 ? std::max<int64_t>(0, t + o.query_offset - o.window_left) : 0;
  }
  int64_t last(int64_t t) const { return o.causal ? std::min(nk - 1, t + o.query_offset) : nk - 1; }
};

// y by the definition: per (b, t, h), gate times one softmax over the band.
Tensor naive(const std::vector<Tensor>& in, const AttentionOptions& o, const Pattern& pattern) {
  const int64_t B = in[0].size(0), T = in[0].size(1), H = in[0].size(2), d = in[0].size(3), e = in[2].size(3);
  const int64_t nk = in[1].size(1);
  const std::vector<double> q = in[0].to_f64_vector(), k = in[1].to_f64_vector(), v = in[2].to_f64_vector();
  const std::vector<double> g = in[3].to_f64_vector();
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const Band band{o, nk};
  std::vector<double> y(static_cast<size_t>(B * T * H * e));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        const double gate = pattern.active(b, t, h) ? g[static_cast<size_t>((b * T + t) * H + h)] : 0.0;
        const int64_t s0 = band.first(t), s1 = band.last(t);
        std::vector<double> p(static_cast<size_t>(s1 - s0 + 1));
        for (int64_t s = s0; s <= s1; ++s) {
          double dot = 0;
          for (int64_t c = 0; c < d; ++c)
            dot += q[static_cast<size_t>(((b * T + t) * H + h) * d + c)] * k[static_cast<size_t>(((b * nk + s) * H + h) * d + c)];
          p[static_cast<size_t>(s - s0)] = scale * dot;
        }
        const double m = *std::max_element(p.begin(), p.end());
        double sum = 0;
        for (double& x : p) sum += (x = std::exp(x - m));
        double* yt = &y[static_cast<size_t>(((b * T + t) * H + h) * e)];
        for (int64_t s = s0; s <= s1; ++s)
          for (int64_t c = 0; c < e; ++c)
            yt[c] += gate * p[static_cast<size_t>(s - s0)] / sum * v[static_cast<size_t>(((b * nk + s) * H + h) * e + c)];
      }
  return Tensor::from_vector<double>(y, {B, T, H, e});
}

// The work of the active pairs only: the kernels skip the rest.
double active_flops(const std::vector<Shape>& s, const AttentionOptions& o, const Pattern& pattern) {
  const int64_t B = s[0][0], T = s[0][1], H = s[0][2], d = s[0][3], e = s[2][3], nk = s[1][1];
  const Band band{o, nk};
  double pairs = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h)
        if (pattern.active(b, t, h)) pairs += static_cast<double>(band.last(t) - band.first(t) + 1);
  return cpu::attention_pair_flops(pairs, d, e, true);
}

OpCase gated_row(std::string name, const AttentionOptions& options, Pattern pattern) {
  OpCase row;
  row.name = std::move(name);
  row.call = [options, pattern](auto& in) {
    return gated_attention(in[0], in[1], in[2], mul(in[3], pattern_mask(in[3], pattern)), options);
  };
  row.reference = [options, pattern](auto& in) { return naive(in, options, pattern); };
  // One token and one head with d != e; two heads; a sequence over two 64-row tiles with one head.
  row.small = {inputs(1, 1, 1, 3, 2), inputs(2, 5, 2, 3, 4), inputs(1, 70, 1, 2, 3)};
  // Several tiles of active rows, odd lengths, d != e both ways, the widest head the device takes.
  row.medium = {inputs(1, 130, 2, 32, 16), inputs(2, 77, 3, 64, 32), inputs(2, 33, 2, 40, 24),
                inputs(1, 100, 2, 16, 48), inputs(1, 70, 1, 128, 96)};
  for (int64_t T : {2048, 4096}) row.bench.push_back(inputs(1, T, 8, 64, 64));
  row.tol.reference = 1e-14;  // online softmax over 64-wide tiles against the loop (6.5e-16 seen)
  row.tol.f32 = 2e-6;  // f32 scores, running max and sums over 64-wide tiles (5.3e-7 seen)
  row.flops = [options, pattern](const std::vector<Shape>& s) { return active_flops(s, options, pattern); };
  return row;
}

}  // namespace

std::vector<OpCase> gated_attention_cases() {
  const Pattern all{1, 1}, three_quarters{4, 3}, half{2, 1};
  AttentionOptions window;
  window.window_left = 40;
  OpCase dense = gated_row("gated_attention", {}, all);
  OpCase sparse75 = gated_row("gated_attention 75% active", {}, three_quarters);
  OpCase sparse50 = gated_row("gated_attention 50% active", {}, half);
  OpCase windowed = gated_row("gated_attention window", window, three_quarters);
  windowed.bench = {inputs(1, 8192, 8, 64, 64)};
  // The queries of a later rank: tokens [37, 37 + T) against every key up to theirs and beyond
  // (the keys of the ranks after it are gathered too, and masked).
  constexpr int64_t kOffset = 37, kAfter = 11;
  AttentionOptions offset;
  offset.query_offset = kOffset;
  OpCase later = gated_row("gated_attention query offset", offset, three_quarters);
  auto shifted = [](int64_t B, int64_t T, int64_t H, int64_t d, int64_t e) {
    return inputs(B, T, H, d, e, kOffset + T + kAfter);
  };
  later.small = {shifted(1, 1, 1, 3, 2), shifted(2, 5, 2, 3, 4), shifted(1, 70, 1, 2, 3)};
  later.medium = {shifted(1, 130, 2, 32, 16), shifted(2, 77, 3, 64, 32), shifted(1, 70, 1, 128, 96)};
  later.bench = {shifted(1, 2048, 8, 64, 64)};
  return {std::move(dense), std::move(sparse75), std::move(sparse50), std::move(windowed), std::move(later)};
}

}  // namespace eat::op_cases
