#include "models/based.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "framework/autograd.h"
#include "framework/comm/comm_stats.h"
#include "framework/flops.h"
#include "framework/parallel/halo.h"
#include "framework/parallel/lasp2.h"
#include "framework/parallel/taylor_sp.h"
#include "framework/parallel/time_rows.h"

namespace eat::models {

namespace {

const char* mixer_name(BasedMixer m) {
  switch (m) {
    case BasedMixer::taylor: return "taylor";
    case BasedMixer::window: return "window";
    default: return "conv";
  }
}

}  // namespace

std::vector<BasedMixer> based_schedule(int64_t n_layers, const IntList& taylor_layers, const IntList& window_layers) {
  std::vector<BasedMixer> schedule(static_cast<size_t>(n_layers), BasedMixer::base_conv);
  for (int64_t l : taylor_layers) schedule.at(static_cast<size_t>(l)) = BasedMixer::taylor;
  for (int64_t l : window_layers) schedule.at(static_cast<size_t>(l)) = BasedMixer::window;
  return schedule;
}

BasedOptions BasedOptions::from(const ModelConfig& c) {
  BasedOptions o;
  o.mlp_hidden = c.options.hidden_width("mlp_hidden", c.d_model);
  o.norm_eps = c.options.get_float("norm_eps");
  o.tie_embeddings = c.options.get_bool("tie_embeddings");
  o.schedule = based_schedule(c.n_layers, c.options.get_int_list("taylor_layers"), c.options.get_int_list("window_layers"));
  o.feature_dim = c.options.get_int("feature_dim");
  const std::string& impl = c.options.get_string("taylor_kernel");
  o.taylor.impl = impl == "parallel"    ? TaylorImpl::parallel
                  : impl == "recurrent" ? TaylorImpl::recurrent
                                        : TaylorImpl::chunked;
  o.taylor.block = c.options.get_int("taylor_block");
  o.taylor.normalize = c.options.get_bool("taylor_denominator");
  o.conv_kernel = c.options.get_int("conv_kernel");
  o.window = TransformerOptions::for_window(c, o.mlp_hidden, o.norm_eps, o.tie_embeddings);
  return o;
}

BaseConv::BaseConv(const ModelConfig& c, const BasedOptions& o, Generator& gen)
    : conv_proj(add_module<Linear>("conv_proj", c.d_model, 2 * c.d_model, true, gen, c.init_std, c.dtype)),
      gate_proj(add_module<Linear>("gate_proj", c.d_model, 2 * c.d_model, true, gen, c.init_std, c.dtype)),
      conv(add_module<ShortConv>("conv", 2 * c.d_model, o.conv_kernel, false, gen, c.dtype)),
      out_proj(add_module<Linear>("out_proj", 2 * c.d_model, c.d_model, true, gen, residual_std(c), c.dtype)) {}

Tensor BaseConv::forward(const Tensor& x, BasedLayerState* state) const {
  Tensor u1 = conv_proj.forward(x), u2 = gate_proj.forward(x);
  Tensor weight = like_activations(conv.weight, u1);
  Tensor c;
  if (sequence_split()) {
    EAT_CHECK(!state, "based: decoding with states and sequence parallelism do not mix");
    CommLabel scope(comm_label());
    c = short_conv_sp(u1, weight, Tensor(), sp_group());  // a halo of k - 1 rows of u1
  } else if (state) {
    c = conv.forward(u1, state->conv_tail);
  } else {
    c = short_conv(u1, weight);
  }
  return out_proj.forward(glu_gate(c, u2, GateActivation::silu));
}

TaylorAttention::TaylorAttention(const ModelConfig& c, const BasedOptions& o, Generator& gen)
    : q_proj(add_module<Linear>("q_proj", c.d_model, c.n_heads * o.feature_dim, false, gen, c.init_std, c.dtype)),
      k_proj(add_module<Linear>("k_proj", c.d_model, c.n_heads * o.feature_dim, false, gen, c.init_std, c.dtype)),
      v_proj(add_module<Linear>("v_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      out_proj(add_module<Linear>("out_proj", c.d_model, c.d_model, false, gen, residual_std(c), c.dtype)),
      n_heads(c.n_heads),
      feature_dim(o.feature_dim),
      head_dim(c.d_model / c.n_heads),
      options(o.taylor),
      qkv_({&q_proj, &k_proj, &v_proj}) {
  // The no-denominator variant's g_norm: RMSNorm(head_dim, eps 1e-5) over each head's outputs.
  if (!options.normalize) head_norm = &add_module<RMSNorm>("head_norm", head_dim, o.norm_eps, c.dtype);
}

Tensor TaylorAttention::forward(const Tensor& x, BasedLayerState* state) const {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  const std::vector<Tensor> qkv = qkv_.forward_split(x);
  Tensor q = reshape(qkv[0], {B, T, n_heads, feature_dim});
  Tensor k = reshape(qkv[1], {B, T, n_heads, feature_dim});
  Tensor v = reshape(qkv[2], {B, T, n_heads, head_dim});
  Tensor y;
  if (sequence_split()) {
    EAT_CHECK(!state, "based: decoding with states and sequence parallelism do not mix");
    CommLabel scope(comm_label());
    // One AllGather of the ranks' [S | z] states ([B, H, D', e + 1] whatever T is), in flight during
    // the local pass; that pass keeps [N | Z] unnormalised, so the incoming state's readout is
    // added before the one division (framework/parallel/taylor_sp.h).
    y = taylor_attention_sp(q, k, v, sp_group(), options);
  } else {
    auto [out, last] = taylor_attention(q, k, v, state ? state->taylor : Tensor(), options);
    if (state) state->taylor = last;
    y = out;
  }
  if (head_norm) y = head_norm->forward(y);
  return out_proj.forward(reshape(y, {B, T, D}));
}

BasedBlock::BasedBlock(const ModelConfig& c, const BasedOptions& o, int64_t layer, Generator& gen)
    : kind(o.schedule.at(static_cast<size_t>(layer))),
      mixer_norm(add_module<RMSNorm>("mixer_norm", c.d_model, o.norm_eps, c.dtype)),
      mlp_norm(add_module<RMSNorm>("mlp_norm", c.d_model, o.norm_eps, c.dtype)),
      // The SwiGLU output projection (fc2) also writes into the residual stream.
      mlp(add_module<SwiGLU>("mlp", c.d_model, o.mlp_hidden, gen, c.init_std, c.dtype, residual_std(c))) {
  switch (kind) {
    case BasedMixer::taylor: taylor = &add_module<TaylorAttention>(mixer_name(kind), c, o, gen); break;
    case BasedMixer::window: window = &add_module<CausalSelfAttention>(mixer_name(kind), c, o.window, gen); break;
    case BasedMixer::base_conv: conv = &add_module<BaseConv>(mixer_name(kind), c, o, gen); break;
  }
}

Tensor BasedBlock::forward(const Tensor& x, BasedLayerState* state, int64_t position) const {
  Tensor n = mixer_norm.forward(x);
  Tensor m = taylor ? taylor->forward(n, state)
             : conv ? conv->forward(n, state)
             : state ? window->forward_cached(n, state->window, position)
                     : window->forward(n);
  Tensor h = add(x, m);
  return mlp.forward(mlp_norm.forward(h), h);
}

Based::Based(const ModelConfig& c, Generator& gen)
    : BlockStack("based", c, c.options.get_float("norm_eps"), gen), config_(c), options_(BasedOptions::from(c)) {
  for (int64_t l = 0; l < c.n_layers; ++l) layers().append(c, options_, l, gen);
  add_head(c, options_.tie_embeddings, gen);
}

double Based::train_flops_per_token(int64_t T) const {
  using flops::Pass;
  const int64_t D = config_.d_model, F = options_.mlp_hidden, H = config_.n_heads, e = D / H;
  const int64_t f = options_.feature_dim;
  // The forward per token: every layer's SwiGLU and its mixer's projections and sequence work
  // (averaged over the sequence's tokens), and the output head.
  double forward = flops::linear(1, D, config_.vocab_size, Pass::forward);
  for (BasedMixer kind : options_.schedule) {
    forward += 3 * flops::linear(1, D, F, Pass::forward);
    switch (kind) {
      case BasedMixer::base_conv:
        forward += flops::linear(1, D, 4 * D, Pass::forward) + flops::linear(1, 2 * D, D, Pass::forward) +
                   flops::short_conv(1, 1, 2 * D, options_.conv_kernel, Pass::forward);
        break;
      case BasedMixer::taylor:
        forward += 2 * flops::linear(1, D, H * f, Pass::forward) + 2 * flops::linear(1, D, D, Pass::forward) +
                   (options_.taylor.impl == TaylorImpl::parallel
                        ? flops::taylor_parallel(1, T, H, f, e, Pass::forward)
                        : flops::taylor_chunked(1, T, H, f, e, options_.taylor.block, Pass::forward)) /
                       static_cast<double>(T);
        break;
      case BasedMixer::window:
        forward += 4 * flops::linear(1, D, D, Pass::forward) +
                   flops::attention(1, T, H, e, e, true, options_.window.window, Pass::forward) / static_cast<double>(T);
        break;
    }
  }
  return 3 * forward;  // backward is twice the forward
}

FamilySpec based_family() {
  FamilySpec f;
  f.name = "based";
  f.options = {
      OptionSpec{"mlp_hidden", int64_t{0}, "SwiGLU hidden width (every block); 0 means `round(8 d_model / 3)`"}.at_least(0),
      OptionSpec{"norm_eps", 1e-5, "RMSNorm epsilon"}.not_below(0),
      {"tie_embeddings", true, "share the token embedding with the output head"},
      {"taylor_layers", IntList{}, "layers (from 0) whose mixer is Taylor linear attention"},
      {"window_layers", IntList{}, "layers (from 0) whose mixer is sliding-window attention; every layer in neither list is BaseConv"},
      OptionSpec{"feature_dim", int64_t{16}, "Taylor q/k width per head (the feature map has `1 + f + f (f + 1) / 2` rows)"}
          .at_least(1),
      {"taylor_kernel", std::string("chunked"), "Taylor linear-attention kernel",
       {{"chunked", "the training kernel, O(T)"}, {"parallel", "the O(T^2) form"}, {"recurrent", "token by token"}}},
      OptionSpec{"taylor_block", int64_t{64}, "chunk size of the chunked Taylor kernel"}.at_least(1),
      {"taylor_denominator", true,
       "divide by the normaliser (the released checkpoints); false: no denominator, an RMSNorm over each head instead"},
      OptionSpec{"window", int64_t{128},
                 "sliding-window layers: each query sees itself and `window` earlier keys (the reference's `window_size: 256` is 128)"}
          .at_least(0),
      OptionSpec{"rope_theta", 10000.0, "RoPE base of the sliding-window layers"}.above(0),
      OptionSpec{"conv_kernel", int64_t{3}, "BaseConv kernel size"}.at_least(1),
  };
  f.sequence_parallel = true;  // Taylor: the [S | z] state gather; windows and convs: halos
  // Two layers, one Taylor (chunks of 2 over the tests' 5 tokens: several chunks and a partial one)
  // and one sliding window of 2 keys back; BaseConv gets its own checks in tests/models/test_based.cpp.
  f.tiny_test_options = {{"mlp_hidden", int64_t{12}},        {"taylor_layers", IntList{0}}, {"window_layers", IntList{1}},
                         {"feature_dim", int64_t{3}},        {"taylor_block", int64_t{2}},  {"window", int64_t{2}}};
  f.check = [](const ModelConfig& c, int64_t, int64_t) -> std::string {
    const IntList& taylor = c.options.get_int_list("taylor_layers");
    const IntList& window = c.options.get_int_list("window_layers");
    for (const auto& [key, list] : {std::pair{"taylor_layers", &taylor}, std::pair{"window_layers", &window}})
      if (std::string why = check_layer_list(key, *list, c.n_layers); !why.empty()) return why;
    for (int64_t l : window)
      if (std::find(taylor.begin(), taylor.end(), l) != taylor.end())
        return "window_layers: layer " + std::to_string(l) + " is in taylor_layers too (a layer has one mixer)";
    if (!window.empty() && (c.d_model / c.n_heads) % 2 != 0)
      return "window_layers: the head dimension d_model / n_heads must be even for RoPE";
    return "";
  };
  f.build = [](const ModelConfig& c, Generator& gen) -> std::unique_ptr<LanguageModel> {
    return std::make_unique<Based>(c, gen);
  };
  return f;
}

}  // namespace eat::models
