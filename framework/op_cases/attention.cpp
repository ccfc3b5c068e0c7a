// Op table rows: causal softmax attention (tiled kernel; sliding window; full attention) and the
// naive O(T^2) kernel that is their reference; and attention with persistent keys (a prefix of k
// and v every query sees), against a loop over the definition with its mask written out.
#include <algorithm>
#include <cmath>

#include "framework/flops.h"
#include "framework/op_cases/op_case.h"
#include "framework/ops.h"
#include "framework/parallel/lasp2.h"
#include "kernels/attention_band.h"
#include "kernels/cpu/attention_flops.h"

namespace eat::op_cases {

namespace {

Sizes qkv(int64_t B, int64_t T, int64_t H, int64_t d, int64_t e) {
  return {normal({B, T, H, d}), normal({B, T, H, d}), normal({B, T, H, e})};
}

OpCase attention_row(std::string name, AttentionImpl impl, bool causal, int64_t window, std::vector<int64_t> bench_lengths) {
  AttentionOptions options;
  options.impl = impl;
  options.causal = causal;
  options.window_left = window;
  AttentionOptions naive = options;
  naive.impl = AttentionImpl::naive;
  OpCase row;
  row.name = std::move(name);
  row.call = [options](auto& in) { return attention(in[0], in[1], in[2], options); };
  // The naive kernel is checked against a loop-by-loop definition in its own test; on CUDA the
  // op runs the flash kernel whatever impl asks, so the naive row is CPU-only.
  if (impl != AttentionImpl::naive) row.reference = [naive](auto& in) { return attention(in[0], in[1], in[2], naive); };
  row.cuda = impl != AttentionImpl::naive;
  if (impl == AttentionImpl::tiled && causal)
    row.sp = [options](auto& in, Communicator& group) { return attention_sp(in[0], in[1], in[2], group, options); };
  // One token and one head with d != e; two heads; a sequence over two 64-wide tiles with one head.
  row.small = {qkv(1, 1, 1, 3, 2), qkv(2, 5, 2, 3, 4), qkv(1, 70, 1, 2, 3)};
  // Odd lengths over several tiles, head widths the device pads to its 16-wide fragments.
  row.medium = {qkv(1, 130, 2, 32, 16), qkv(2, 77, 3, 64, 32), qkv(2, 33, 2, 40, 24)};
  for (int64_t T : bench_lengths) row.bench.push_back(qkv(1, T, 8, 64, 64));
  row.tol.f32 = 2e-6;  // f32 scores, running max and sums over 64-wide tiles (3.4e-7 measured)
  row.flops = [causal, window](const std::vector<Shape>& s) {
    return flops::attention(s[0][0], s[0][1], s[0][2], s[0][3], s[2][3], causal, window, flops::Pass::forward_backward);
  };
  return row;
}

// ---- persistent keys: k and v [B, prefix + keys, H, *], the queries the last T of the keys
// (query_offset = keys - T: more keys than queries when extra > 0).

Sizes prefixed_qkv(int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, int64_t prefix, int64_t extra) {
  return {normal({B, T, H, d}), normal({B, prefix + extra + T, H, d}), normal({B, prefix + extra + T, H, e})};
}

AttentionOptions prefixed_options(const std::vector<Shape>& s, AttentionOptions options) {
  options.query_offset = s[1][1] - options.prefix - s[0][1];
  return options;
}

// Whether query t sees row j of k, written out: a persistent key always; sequence key s = j - prefix
// at or before the query's position t + query_offset (causal), and within the window.
bool sees(const AttentionOptions& o, int64_t t, int64_t j) {
  if (j < o.prefix) return true;
  const int64_t s = j - o.prefix, position = t + o.query_offset;
  if (!o.causal) return true;
  return s <= position && (o.window_left < 0 || s >= position - o.window_left);
}

// softmax(scale q k^T) v over the rows each query sees, one (b, t, h) at a time, in f64.
Tensor prefixed_reference(const std::vector<Tensor>& in, const AttentionOptions& options) {
  const AttentionOptions o = prefixed_options(shapes_of(in), options);
  const int64_t B = in[0].size(0), T = in[0].size(1), H = in[0].size(2), d = in[0].size(3);
  const int64_t rows = in[1].size(1), e = in[2].size(3);
  const double scale = o.scale.value_or(1.0 / std::sqrt(static_cast<double>(d)));
  const std::vector<double> q = in[0].to_f64_vector(), k = in[1].to_f64_vector(), v = in[2].to_f64_vector();
  std::vector<double> out(static_cast<size_t>(B * T * H * e), 0.0), p(static_cast<size_t>(rows));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        const double* qt = &q[static_cast<size_t>(((b * T + t) * H + h) * d)];
        double mx = -INFINITY, total = 0;
        for (int64_t j = 0; j < rows; ++j) {
          if (!sees(o, t, j)) continue;
          const double* kj = &k[static_cast<size_t>(((b * rows + j) * H + h) * d)];
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += qt[c] * kj[c];
          p[j] = scale * dot;
          mx = std::max(mx, p[j]);
        }
        for (int64_t j = 0; j < rows; ++j)
          if (sees(o, t, j)) total += p[j] = std::exp(p[j] - mx);
        double* y = &out[static_cast<size_t>(((b * T + t) * H + h) * e)];
        for (int64_t j = 0; j < rows; ++j) {
          if (!sees(o, t, j)) continue;
          const double* vj = &v[static_cast<size_t>(((b * rows + j) * H + h) * e)];
          for (int64_t c = 0; c < e; ++c) y[c] += p[j] / total * vj[c];
        }
      }
  return Tensor::from_vector<double>(out, {B, T, H, e});
}

// The attended pairs of one head: every query's persistent keys and its band.
double prefixed_pairs(const std::vector<Shape>& s, const AttentionOptions& options) {
  const AttentionOptions o = prefixed_options(s, options);
  AttentionDims dims;
  dims.seq = s[0][1];
  dims.keys = s[1][1] - o.prefix;
  dims.causal = o.causal;
  dims.window_left = o.window_left;
  dims.query_offset = o.query_offset;
  double pairs = 0;
  for (int64_t t = 0; t < dims.seq; ++t)
    pairs += static_cast<double>(o.prefix + dims.last_key(t) - dims.first_key(t) + 1);
  return pairs;
}

// `extra` more sequence keys than queries (query_offset = extra); bench shapes have none.
OpCase prefixed_row(std::string name, AttentionImpl impl, bool causal, int64_t window, int64_t prefix, int64_t extra,
                    std::vector<int64_t> bench_lengths) {
  AttentionOptions options;
  options.impl = impl;
  options.causal = causal;
  options.window_left = window;
  options.prefix = prefix;
  OpCase row;
  row.name = std::move(name);
  row.call = [options](auto& in) { return attention(in[0], in[1], in[2], prefixed_options(shapes_of(in), options)); };
  row.reference = [options](auto& in) { return prefixed_reference(in, options); };
  row.cuda = impl != AttentionImpl::naive;  // on CUDA the flash kernel runs whatever impl asks
  // One token and one head with d != e; two heads; a sequence over two 64-wide tiles with one head.
  row.small = {prefixed_qkv(1, 1, 1, 3, 2, prefix, extra), prefixed_qkv(2, 5, 2, 3, 4, prefix, extra),
               prefixed_qkv(1, 70, 1, 2, 3, prefix, extra)};
  // Odd lengths over several tiles, head widths the device pads to its 16-wide fragments.
  row.medium = {prefixed_qkv(1, 130, 2, 32, 16, prefix, 2 * extra), prefixed_qkv(2, 77, 3, 64, 32, prefix, extra),
                prefixed_qkv(2, 33, 2, 40, 24, prefix, extra)};
  for (int64_t T : bench_lengths) row.bench.push_back(prefixed_qkv(1, T, 8, 64, 64, prefix, 0));
  // The reference's default 1e-14: the kernels' tiles and the loop sum in different orders (6.3e-16
  // seen).
  row.tol.f32 = 2e-6;  // f32 scores, running max and sums over 64-wide tiles (3.5e-7 measured)
  row.flops = [options](const std::vector<Shape>& s) {
    return cpu::attention_pair_flops(static_cast<double>(s[0][0] * s[0][2]) * prefixed_pairs(s, options), s[0][3],
                                     s[2][3], true);
  };
  return row;
}

}  // namespace

std::vector<OpCase> attention_cases() {
  return {attention_row("attention", AttentionImpl::tiled, true, -1, {512, 1024, 2048, 4096}),
          attention_row("attention window", AttentionImpl::tiled, true, 40, {2048, 8192}),
          attention_row("attention full", AttentionImpl::tiled, false, -1, {512, 2048}),
          attention_row("attention naive", AttentionImpl::naive, true, -1, {512, 1024, 2048}),
          // Titans' SW-Attn*: a sliding window and N_p persistent keys.
          prefixed_row("attention window prefix", AttentionImpl::tiled, true, 5, 4, 0, {2048, 8192}),
          prefixed_row("attention window prefix offset", AttentionImpl::tiled, true, 20, 1, 9, {2048}),
          prefixed_row("attention prefix", AttentionImpl::tiled, true, -1, 1, 0, {2048}),
          prefixed_row("attention full prefix", AttentionImpl::tiled, false, -1, 4, 3, {2048}),
          prefixed_row("attention naive window prefix", AttentionImpl::naive, true, 5, 4, 0, {2048})};
}

}  // namespace eat::op_cases
