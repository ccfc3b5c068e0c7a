// Op table rows: summary_attention (RAT's attention over chunk summaries with a private key per
// query), at RAT's chunk of 16, at 64, at chunk 1 (every token its own chunk: causal attention),
// and with a query offset (the queries of a later sequence-parallel rank against the summaries of
// every chunk before and including theirs). The reference is a naive f64 loop over the
// definition, O(T C) per head; tests/kernels/test_summary_attention.cpp checks the reductions.
#include <algorithm>
#include <cmath>

#include "framework/flops.h"
#include "framework/op_cases/op_case.h"
#include "framework/ops.h"

namespace eat::op_cases {

namespace {

// q, k [B, T, H, d], v [B, T, H, e], k_sum [B, C, H, d], v_sum [B, C, H, e]. q and k_sum are
// drawn small enough that the softmax spreads over several keys.
Sizes inputs(int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, int64_t C) {
  return {normal({B, T, H, d}, 0.7), normal({B, T, H, d}, 0.7), normal({B, T, H, e}), normal({B, C, H, d}, 0.7),
          normal({B, C, H, e})};
}

// The summaries of every chunk some query of [offset, offset + T) starts in or passes.
int64_t chunks_of(int64_t T, int64_t chunk, int64_t offset) { return (offset + T + chunk - 1) / chunk; }

// y by the definition: per query, one softmax over the summaries it sees and its own key.
Tensor naive(const std::vector<Tensor>& in, int64_t chunk, int64_t offset) {
  const int64_t B = in[0].size(0), T = in[0].size(1), H = in[0].size(2), d = in[0].size(3), e = in[2].size(3);
  const int64_t C = in[3].size(1);
  const std::vector<double> q = in[0].to_f64_vector(), k = in[1].to_f64_vector(), v = in[2].to_f64_vector();
  const std::vector<double> ks = in[3].to_f64_vector(), vs = in[4].to_f64_vector();
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> y(static_cast<size_t>(B * T * H * e));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        const double* qt = &q[static_cast<size_t>(((b * T + t) * H + h) * d)];
        auto logit = [&](const std::vector<double>& keys, int64_t rows, int64_t row) {
          const double* kr = &keys[static_cast<size_t>(((b * rows + row) * H + h) * d)];
          double s = 0;
          for (int64_t c = 0; c < d; ++c) s += qt[c] * kr[c];
          return scale * s;
        };
        const int64_t seen = std::min((offset + t) / chunk, C);
        std::vector<double> s(static_cast<size_t>(seen + 1));
        for (int64_t j = 0; j < seen; ++j) s[static_cast<size_t>(j)] = logit(ks, C, j);
        s[static_cast<size_t>(seen)] = logit(k, T, t);
        const double m = *std::max_element(s.begin(), s.end());
        double sum = 0;
        for (double& x : s) sum += (x = std::exp(x - m));
        double* yt = &y[static_cast<size_t>(((b * T + t) * H + h) * e)];
        for (int64_t j = 0; j <= seen; ++j) {
          const bool own = j == seen;
          const double* vr = own ? &v[static_cast<size_t>(((b * T + t) * H + h) * e)]
                                 : &vs[static_cast<size_t>(((b * C + j) * H + h) * e)];
          for (int64_t c = 0; c < e; ++c) yt[c] += s[static_cast<size_t>(j)] / sum * vr[c];
        }
      }
  return Tensor::from_vector<double>(y, in[2].shape());
}

OpCase summary_row(std::string name, int64_t chunk, int64_t offset) {
  OpCase row;
  row.name = std::move(name);
  const SummaryAttentionOptions options{.chunk = chunk, .query_offset = offset};
  row.call = [options](auto& in) { return summary_attention(in[0], in[1], in[2], in[3], in[4], options); };
  row.reference = [chunk, offset](auto& in) { return naive(in, chunk, offset); };
  auto sizes = [chunk, offset](int64_t B, int64_t T, int64_t H, int64_t d, int64_t e) {
    return inputs(B, T, H, d, e, chunks_of(T, chunk, offset));
  };
  // One token; a ragged last chunk with two heads and d != e; one head over several chunks; no
  // summaries at all (C = 0: every query sees its own key only).
  row.small = {sizes(1, 1, 1, 3, 2), sizes(2, 2 * chunk + 3, 2, 3, 4), sizes(1, 3 * chunk + 1, 1, 2, 3),
               inputs(1, 5, 1, 2, 2, 0)};
  // Several query tiles, head widths of the models (64), the widest the device takes (128) and odd
  // ones, d != e both ways.
  row.medium = {sizes(1, 130, 2, 32, 16), sizes(2, 77, 3, 64, 64), sizes(2, 33, 2, 40, 24), sizes(1, 100, 2, 16, 48),
                sizes(1, 70, 1, 128, 96)};
  row.tol.reference = 1e-14;  // whole-row softmax against the loop: summation order only (3.2e-16 seen)
  row.tol.f32 = 1e-6;         // f32 scores, softmax and sums over up to 131 keys (2.2e-7 to 2.7e-7 seen)
  row.flops = [chunk, offset](const std::vector<Shape>& s) {
    return flops::summary_attention(s[0][0], s[0][1], s[0][2], s[0][3], s[2][3], s[3][1], chunk, offset,
                                    flops::Pass::forward_backward);
  };
  return row;
}

}  // namespace

std::vector<OpCase> summary_attention_cases() {
  // RAT's chunk (16) and the layer's default (64): at T = 4096 and d = 64, C = 256 and 64.
  OpCase rat = summary_row("summary_attention", 16, 0);
  OpCase wide = summary_row("summary_attention chunk 64", 64, 0);
  // Over 128 tokens the finite differences' rounding reaches the gradient check's tolerance (1.3x
  // at [2, 131, 2, 3]): a chunk and a ragged one with one head, and a sequence inside one chunk.
  wide.small = {inputs(1, 1, 1, 3, 2, 1), inputs(1, 70, 1, 3, 4, 2), inputs(2, 20, 2, 3, 4, 1), inputs(1, 5, 1, 2, 2, 0)};
  for (int64_t T : {4096, 16384}) {
    rat.bench.push_back(inputs(1, T, 12, 64, 64, T / 16));
    wide.bench.push_back(inputs(1, T, 12, 64, 64, T / 64));
  }
  // Every token its own chunk (C = T: causal attention over the summaries).
  OpCase single = summary_row("summary_attention chunk 1", 1, 0);
  single.bench.push_back(inputs(1, 2048, 12, 64, 64, 2048));
  // The queries of a later rank: tokens [13, 13 + T) of the sequence against the summaries of
  // every chunk up to theirs; the first query starts mid-chunk.
  OpCase offset = summary_row("summary_attention query offset", 4, 13);
  offset.bench.push_back(inputs(1, 2048, 12, 64, 64, chunks_of(2048, 4, 13)));
  return {std::move(rat), std::move(wide), std::move(single), std::move(offset)};
}

}  // namespace eat::op_cases
