#include "models/transformer.h"

#include <cmath>

#include "framework/comm/comm_stats.h"
#include "base/error.h"
#include "framework/flops.h"
#include "framework/parallel/time_rows.h"

namespace eat::models {

TransformerOptions TransformerOptions::from(const ModelConfig& c) {
  TransformerOptions o;
  o.mlp_hidden = c.options.hidden_width("mlp_hidden", c.d_model);
  o.rope_theta = c.options.get_float("rope_theta");
  o.norm_eps = c.options.get_float("norm_eps");
  o.tie_embeddings = c.options.get_bool("tie_embeddings");
  o.window = c.options.get_int("window");
  const std::string& impl = c.options.get_string("attention");
  o.attention_impl = impl == "naive" ? AttentionImpl::naive : AttentionImpl::tiled;
  return o;
}

TransformerOptions TransformerOptions::for_window(const ModelConfig& c, int64_t mlp_hidden, double norm_eps,
                                                  bool tie_embeddings) {
  TransformerOptions o;
  o.mlp_hidden = mlp_hidden;
  o.rope_theta = c.options.get_float("rope_theta");
  o.norm_eps = norm_eps;
  o.tie_embeddings = tie_embeddings;
  o.window = c.options.get_int("window");
  o.attention_impl = AttentionImpl::tiled;
  return o;
}

double residual_std(const ModelConfig& c) { return c.init_std / std::sqrt(2.0 * static_cast<double>(c.n_layers)); }

CausalSelfAttention::CausalSelfAttention(const ModelConfig& c, const TransformerOptions& o, Generator& gen)
    : q_proj(add_module<Linear>("q_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      k_proj(add_module<Linear>("k_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      v_proj(add_module<Linear>("v_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      o_proj(add_module<Linear>("o_proj", c.d_model, c.d_model, false, gen, residual_std(c), c.dtype)),
      n_heads(c.n_heads),
      head_dim(c.d_model / c.n_heads),
      qkv_({&q_proj, &k_proj, &v_proj}),
      rope_theta(o.rope_theta) {
  attention_options.causal = true;
  attention_options.window_left = o.window;
  attention_options.impl = o.attention_impl;
}

CausalSelfAttention::Heads CausalSelfAttention::project_heads(const Tensor& x, int64_t position) const {
  const Shape heads{x.size(0), x.size(1), n_heads, head_dim};
  const PartThen rotate = PartThen::rope(n_heads, rope_theta, position);
  const std::vector<Tensor> qkv = qkv_.forward_split(x, {rotate, rotate, {}});
  return {reshape(qkv[0], heads), reshape(qkv[1], heads), reshape(qkv[2], heads)};
}

Tensor CausalSelfAttention::forward(const Tensor& x, int64_t position_offset, const Tensor& residual) const {
  return o_proj.forward(heads_output(x, position_offset), residual);
}

Tensor CausalSelfAttention::forward_cached(const Tensor& x, WindowCache& cache, int64_t position) const {
  return o_proj.forward(heads_output_cached(x, cache, position));
}

Tensor CausalSelfAttention::heads_output(const Tensor& x, int64_t position_offset) const {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  const bool split = sequence_split();
  // Under sequence parallelism this rank's tokens start at position rank * T.
  if (split) position_offset += static_cast<int64_t>(sp_group().rank()) * T;
  const auto [q, k, v] = project_heads(x, position_offset);
  Tensor a;
  if (split) {
    CommLabel scope(comm_label());
    const AttentionKeys all = attention_sp_keys(k, v, sp_group(), attention_options);
    AttentionOptions options = attention_options;
    options.query_offset = all.query_offset;
    a = attend_heads(x, q, all.keys, all.values, options);
  } else {
    a = attend_heads(x, q, k, v, attention_options);
  }
  return reshape(a, {B, T, D});
}

Tensor CausalSelfAttention::local_heads_output(const Tensor& x) const {
  const auto [q, k, v] = project_heads(x, 0);
  return reshape(attend_heads(x, q, k, v, attention_options), x.shape());
}

Tensor CausalSelfAttention::attend_heads(const Tensor&, const Tensor& q, const Tensor& keys, const Tensor& values,
                                         const AttentionOptions& options) const {
  return attention(q, keys, values, options);
}

Tensor CausalSelfAttention::heads_output_cached(const Tensor& x, WindowCache& cache, int64_t position) const {
  EAT_CHECK(!sequence_split(), "attention: decoding with a cache and sequence parallelism do not mix");
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  const auto [q, k, v] = project_heads(x, position);
  Tensor keys = append_time(cache.keys, k);
  Tensor values = append_time(cache.values, v);
  AttentionOptions options = attention_options;
  options.query_offset = keys.size(1) - T;
  Tensor a = attend_heads(x, q, keys, values, options);
  // A window keeps its last window_left keys (-1, full attention: all of them).
  cache.keys = last_rows(keys, options.window_left);
  cache.values = last_rows(values, options.window_left);
  return reshape(a, {B, T, D});
}

std::string CausalSelfAttention::sequence_parallel_refusal() const {
  return attention_options.impl == AttentionImpl::tiled ? "" : "needs model.transformer.attention = \"tiled\"";
}

TransformerBlock::TransformerBlock(const ModelConfig& c, const TransformerOptions& o, Generator& gen,
                                   const AttentionMaker& make)
    : attn_norm(add_module<RMSNorm>("attn_norm", c.d_model, o.norm_eps, c.dtype)),
      attn(make ? adopt_module("attn", make()) : add_module<CausalSelfAttention>("attn", c, o, gen)),
      mlp_norm(add_module<RMSNorm>("mlp_norm", c.d_model, o.norm_eps, c.dtype)),
      // The SwiGLU output projection also writes into the residual stream.
      mlp(add_module<SwiGLU>("mlp", c.d_model, o.mlp_hidden, gen, c.init_std, c.dtype, residual_std(c))) {}

Tensor TransformerBlock::forward(const Tensor& x, WindowCache* cache, int64_t position) const {
  Tensor n = attn_norm.forward(x);
  Tensor h = cache ? add(x, attn.forward_cached(n, *cache, position)) : attn.forward(n, 0, x);
  return mlp.forward(mlp_norm.forward(h), h);
}

Transformer::Transformer(const ModelConfig& c, Generator& gen)
    : BlockStack("transformer", c, c.options.get_float("norm_eps"), gen),
      config_(c),
      options_(TransformerOptions::from(c)) {
  for (int64_t i = 0; i < c.n_layers; ++i) layers().append(c, options_, gen);
  add_head(c, options_.tie_embeddings, gen);
}

double Transformer::train_flops_per_token(int64_t T) const {
  using flops::Pass;
  const int64_t D = config_.d_model, F = options_.mlp_hidden, H = config_.n_heads, d = D / H;
  const double L = static_cast<double>(config_.n_layers);
  // The forward per token: the projections q, k, v, o; gate, up, down; the output head; and causal
  // (or sliding-window) attention over the sequence, averaged over its tokens.
  const double projections =
      L * (4 * flops::linear(1, D, D, Pass::forward) + 3 * flops::linear(1, D, F, Pass::forward)) +
      flops::linear(1, D, config_.vocab_size, Pass::forward);
  const double attention = L * flops::attention(1, T, H, d, d, true, options_.window, Pass::forward) / static_cast<double>(T);
  return 3 * (projections + attention);  // backward is twice the forward
}

FamilySpec transformer_family() {
  FamilySpec f;
  f.name = "transformer";
  f.options = {
      OptionSpec{"mlp_hidden", int64_t{0}, "SwiGLU hidden width; 0 means `round(8 d_model / 3)`"}.at_least(0),
      OptionSpec{"rope_theta", 10000.0, "RoPE base"}.above(0),
      OptionSpec{"norm_eps", 1e-5, "RMSNorm epsilon"}.not_below(0),
      {"tie_embeddings", false, "share the token embedding with the output head"},
      {"window", int64_t{-1}, "sliding-window attention: each query sees itself and `window` earlier keys; -1 is full causal"},
      {"attention", std::string("tiled"), "attention kernel",
       {{"tiled", "online softmax, O(T) memory"}, {"naive", "the O(T^2) reference"}}},
  };
  f.renamed_options = {{"ffn_hidden", "mlp_hidden"}};
  f.sequence_parallel = true;  // LASP-2H, or a halo exchange with a window
  f.tiny_test_options = {{"mlp_hidden", int64_t{12}}};
  f.check = [](const ModelConfig& c, int64_t, int64_t) -> std::string {
    if (c.options.get_int("window") < -1) return "window must be -1 (full causal) or >= 0";
    if ((c.d_model / c.n_heads) % 2 != 0) return "head dimension d_model / n_heads must be even for RoPE";
    return "";
  };
  f.build = [](const ModelConfig& c, Generator& gen) -> std::unique_ptr<LanguageModel> {
    return std::make_unique<Transformer>(c, gen);
  };
  return f;
}

}  // namespace eat::models
