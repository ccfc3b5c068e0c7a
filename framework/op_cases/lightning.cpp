// Op table rows: Lightning Attention-2 (decayed causal linear attention, chunked kernel; output and
// final state, with and without an initial state) and the two LASP-2 pieces, the state readout
// and the state sum. Their references are the naive O(T^2) kernel, which tests/kernels/test_lightning.cpp
// checks against a loop-by-loop definition.
#include "framework/flops.h"
#include "framework/op_cases/op_case.h"
#include "framework/ops.h"
#include "framework/parallel/lasp2.h"

namespace eat::op_cases {

namespace {

// One lambda per head from a pool of strong decay, none, and the model's range.
std::vector<double> decays(int64_t H) {
  const double pool[] = {0.97, 1.0, 0.5, 0.05};
  std::vector<double> out;
  for (int64_t h = 0; h < H; ++h) out.push_back(pool[h % 4]);
  return out;
}

LightningOptions with_impl(LightningImpl impl) {
  LightningOptions o;
  o.impl = impl;
  return o;
}

// q, k [B, T, H, d] (small, as after SiLU), v [B, T, H, e], and the initial state [B, H, d, e].
Sizes qkv(int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, bool with_state) {
  Sizes s{normal({B, T, H, d}, 0.5), normal({B, T, H, d}, 0.5), normal({B, T, H, e})};
  if (with_state) s.push_back(normal({B, H, d, e}));
  return s;
}

// The chunked kernel (blocks of 64) on q, k, v and an optional initial state.
std::pair<Tensor, Tensor> lightning(const std::vector<Tensor>& in, LightningImpl impl) {
  return lightning_attention(in[0], in[1], in[2], decays(in[0].size(2)), in.size() > 3 ? in[3] : Tensor(), with_impl(impl));
}

// The output (or the final state) of lightning_attention, with or without an initial state.
OpCase lightning_row(std::string name, bool with_state, bool final_state) {
  OpCase row;
  row.name = std::move(name);
  // One token; one head with d != e; a ragged second block; widths the device pads to 16.
  row.small = {qkv(1, 1, 1, 2, 3, with_state), qkv(2, 5, 2, 3, 2, with_state), qkv(1, 70, 1, 2, 3, with_state)};
  row.medium = {qkv(2, 130, 3, 16, 8, with_state), qkv(2, 77, 3, 64, 32, with_state), qkv(1, 33, 4, 40, 24, with_state)};
  row.tol.f32 = 2e-6;  // f32 rounding summed over up to 130 decayed terms (1.9e-7 measured)
  row.call = [final_state](auto& in) {
    auto out = lightning(in, LightningImpl::chunked);
    return final_state ? out.second : out.first;
  };
  row.reference = [final_state](auto& in) {
    auto out = lightning(in, LightningImpl::naive);
    return final_state ? out.second : out.first;
  };
  if (!with_state && !final_state) {
    row.sp = [](auto& in, Communicator& group) { return lightning_attention_sp(in[0], in[1], in[2], decays(in[0].size(2)), group); };
    for (int64_t T : {1024, 4096, 16384}) row.bench.push_back(qkv(1, T, 8, 64, 64, false));
    // transnormer_tiny's attention: 8 sequences of 512 tokens, and one of 4096; 4 heads of 64.
    for (int64_t B : {8, 1}) row.bench.push_back(qkv(B, 4096 / B, 4, 64, 64, false));
    row.flops = [](const std::vector<Shape>& s) {
      return flops::lightning(s[0][0], s[0][1], s[0][2], s[0][3], s[2][3], LightningOptions{}.block,
                              flops::Pass::forward_backward);
    };
  }
  return row;
}

// q [B, T, H, d] and the state S [B, H, d, e] of the readout.
Sizes readout_sizes(int64_t B, int64_t T, int64_t H, int64_t d, int64_t e) {
  return {normal({B, T, H, d}), normal({B, H, d, e})};
}

OpCase readout_row() {
  OpCase row;
  row.name = "decayed_state_readout";
  row.call = [](auto& in) { return decayed_state_readout(in[0], in[1], decays(in[0].size(2))); };
  // The readout is lightning_attention's initial-state term: the whole op with k = v = 0.
  row.reference = [](auto& in) {
    const Tensor& q = in[0];
    const Tensor v = Tensor::zeros({q.size(0), q.size(1), q.size(2), in[1].size(3)}, DType::f64);
    return lightning(std::vector<Tensor>{q, Tensor::zeros(q.shape(), DType::f64), v, in[1]}, LightningImpl::naive).first;
  };
  row.small = {readout_sizes(1, 1, 2, 1, 1), readout_sizes(2, 5, 2, 3, 4)};
  // The last two are wider than the CUDA sweep's 128 (its plain kernels): a MAC retrieval's d x h
  // and h x e readouts of an MLP memory.
  row.medium = {readout_sizes(2, 40, 2, 16, 8), readout_sizes(2, 77, 3, 64, 32), readout_sizes(1, 5, 2, 24, 40),
                readout_sizes(2, 9, 2, 8, 136), readout_sizes(1, 6, 3, 144, 8)};
  row.bench = {readout_sizes(1, 1024, 8, 64, 64), readout_sizes(1, 16384, 8, 64, 64)};
  row.flops = [](const std::vector<Shape>& s) {
    return flops::state_readout(s[0][0], s[0][1], s[0][2], s[0][3], s[1][3], flops::Pass::forward_backward);
  };
  return row;
}

OpCase state_sum_row() {
  OpCase row;
  row.name = "decayed_state_sum";
  row.call = [](auto& in) { return decayed_state_sum(in[0], in[1], decays(in[0].size(2))); };
  // The state sum is lightning_attention's final state from a zero start, whatever q is.
  row.reference = [](auto& in) {
    return lightning(std::vector<Tensor>{Tensor::zeros(in[0].shape(), DType::f64), in[0], in[1]}, LightningImpl::naive)
        .second;
  };
  auto sizes = [](int64_t B, int64_t T, int64_t H, int64_t d, int64_t e) {
    return Sizes{normal({B, T, H, d}, 0.5), normal({B, T, H, e})};
  };
  row.small = {sizes(2, 1, 1, 2, 3), sizes(2, 5, 2, 3, 4), sizes(1, 70, 1, 2, 2)};
  row.medium = {sizes(2, 40, 2, 16, 8), sizes(2, 83, 3, 40, 24), sizes(1, 131, 4, 128, 96)};
  row.bench = {sizes(1, 1024, 8, 64, 64), sizes(1, 16384, 8, 64, 64)};
  row.flops = [](const std::vector<Shape>& s) {
    return flops::state_sum(s[0][0], s[0][1], s[0][2], s[0][3], s[1][3], flops::Pass::forward_backward);
  };
  return row;
}

}  // namespace

std::vector<OpCase> lightning_cases() {
  return {lightning_row("lightning_attention", false, false), lightning_row("lightning_attention initial state", true, false),
          lightning_row("lightning_attention final state", true, true), readout_row(), state_sum_row()};
}

}  // namespace eat::op_cases
