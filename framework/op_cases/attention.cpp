// Op table rows: causal softmax attention (tiled kernel; sliding window; full attention) and the
// naive O(T^2) kernel that is their reference.
#include "framework/flops.h"
#include "framework/op_cases/op_case.h"
#include "framework/ops.h"
#include "framework/parallel/lasp2.h"

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

}  // namespace

std::vector<OpCase> attention_cases() {
  return {attention_row("attention", AttentionImpl::tiled, true, -1, {512, 1024, 2048, 4096}),
          attention_row("attention window", AttentionImpl::tiled, true, 40, {2048, 8192}),
          attention_row("attention full", AttentionImpl::tiled, false, -1, {512, 2048}),
          attention_row("attention naive", AttentionImpl::naive, true, -1, {512, 1024, 2048})};
}

}  // namespace eat::op_cases
