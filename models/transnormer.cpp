#include "models/transnormer.h"

#include <cmath>

#include "framework/comm/comm_stats.h"
#include "base/error.h"
#include "framework/autograd.h"
#include "framework/flops.h"

namespace eat::models {

namespace {
// The n slopes 2^(-8 (h + 1) / n) of a power-of-2 head count n.
std::vector<double> power_of_two_slopes(int64_t n) {
  std::vector<double> slopes;
  for (int64_t h = 0; h < n; ++h) slopes.push_back(std::pow(2.0, -8.0 * static_cast<double>(h + 1) / static_cast<double>(n)));
  return slopes;
}
}  // namespace

std::vector<double> alibi_slopes(int64_t n_heads) {
  int64_t below = 1;  // the largest power of 2 <= n_heads
  while (below * 2 <= n_heads) below *= 2;
  std::vector<double> slopes = power_of_two_slopes(below);
  const std::vector<double> finer = power_of_two_slopes(2 * below);
  for (int64_t i = 0; static_cast<int64_t>(slopes.size()) < n_heads; i += 2) slopes.push_back(finer[static_cast<size_t>(i)]);
  return slopes;
}

std::vector<double> transnormer_decay(int64_t n_heads, int64_t layer, int64_t n_layers) {
  // With one layer the released formula divides by zero; that layer gets the layer-0 decay.
  const double depth = n_layers > 1 ? static_cast<double>(layer) / static_cast<double>(n_layers - 1) : 0.0;
  std::vector<double> lambda;
  for (double slope : alibi_slopes(n_heads)) lambda.push_back(std::exp(-slope * (1.0 - depth + 1e-5)));
  return lambda;
}

TransNormerOptions TransNormerOptions::from(const ModelConfig& c) {
  TransNormerOptions o;
  o.mlp_hidden = c.options.hidden_width("mlp_hidden", c.d_model);
  o.norm_eps = c.options.get_float("norm_eps");
  o.scale_embedding = c.options.get_bool("scale_embedding");
  o.tie_embeddings = c.options.get_bool("tie_embeddings");
  o.attention.block = c.options.get_int("block");
  const std::string& impl = c.options.get_string("attention");
  o.attention.impl = impl == "naive" ? LightningImpl::naive
                     : impl == "recurrent" ? LightningImpl::recurrent
                                           : LightningImpl::chunked;
  return o;
}

NormLinearAttention::NormLinearAttention(const ModelConfig& c, const TransNormerOptions& o, int64_t layer, Generator& gen)
    : q_proj(add_module<Linear>("q_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      k_proj(add_module<Linear>("k_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      v_proj(add_module<Linear>("v_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      u_proj(add_module<Linear>("u_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      o_proj(add_module<Linear>("o_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      n_heads(c.n_heads),
      head_dim(c.d_model / c.n_heads),
      norm_eps(o.norm_eps),
      decay(transnormer_decay(c.n_heads, layer, c.n_layers)),
      attention_options(o.attention),
      qkvu_({&q_proj, &k_proj, &v_proj, &u_proj}) {}

Tensor NormLinearAttention::forward(const Tensor& x, const Tensor& state, Tensor* final_state,
                                    const Tensor& residual) const {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  Shape heads{B, T, n_heads, head_dim};
  const std::vector<Tensor> qkvu = qkvu_.forward_split(x);
  Tensor q = reshape(silu(qkvu[0]), heads);
  Tensor k = reshape(silu(qkvu[1]), heads);
  Tensor v = reshape(qkvu[2], heads);
  Tensor o;
  if (sequence_split()) {
    EAT_CHECK(!state.defined() && !final_state, "transnormer: decoding with states and sequence parallelism do not mix");
    CommLabel scope(comm_label());
    o = lightning_attention_sp(q, k, v, decay, sp_group(), attention_options);
  } else {
    auto [out, last] = lightning_attention(q, k, v, decay, state, attention_options);
    if (final_state) *final_state = last;
    o = out;
  }
  // SRMSNorm over all heads jointly (the whole hidden width), then the output gate u.
  return o_proj.forward(simple_rms_norm_gate(reshape(o, {B, T, D}), qkvu[3], norm_eps), residual);
}

TransNormerBlock::TransNormerBlock(const ModelConfig& c, const TransNormerOptions& o, int64_t layer, Generator& gen)
    : attn(add_module<NormLinearAttention>("attn", c, o, layer, gen)),
      mlp(add_module<SGLU>("mlp", c.d_model, o.mlp_hidden, gen, c.init_std, c.dtype)),
      norm_eps(o.norm_eps) {}

Tensor TransNormerBlock::forward(const Tensor& x, const Tensor& state, Tensor* final_state) const {
  Tensor h = attn.forward(simple_rms_norm(x, norm_eps), state, final_state, x);
  return mlp.forward(simple_rms_norm(h, norm_eps), h);
}

TransNormer::TransNormer(const ModelConfig& c, Generator& gen)
    : config_(c),
      options_(TransNormerOptions::from(c)),
      embed_(add_module<Embedding>("embed", c.vocab_size, c.d_model, gen, c.init_std, c.dtype)),
      layers_(add_module<ModuleList<TransNormerBlock>>("layers")) {
  for (int64_t l = 0; l < c.n_layers; ++l) layers_.append(c, options_, l, gen);
  if (!options_.tie_embeddings)
    lm_head_ = &add_module<Linear>("lm_head", c.d_model, c.vocab_size, false, gen, c.init_std, c.dtype);
}

Tensor TransNormer::embed(const Tensor& ids) const {
  EAT_CHECK(ids.dim() == 2, "transnormer: ids must be [batch, time], got ", shape_str(ids.shape()));
  Tensor x = cast(embed_.forward(ids), config_.activation_dtype());
  return options_.scale_embedding ? scale(x, std::sqrt(static_cast<double>(config_.d_model))) : x;
}

Tensor TransNormer::head(const Tensor& x) const {
  Tensor normed = simple_rms_norm(x, options_.norm_eps);
  return linear(normed, like_activations(lm_head_ ? lm_head_->weight : embed_.weight, normed));
}

ModelOutput TransNormer::forward(const Tensor& ids) {
  Tensor x = embed(ids);
  for (size_t i = 0; i < layers_.size(); ++i) x = layers_[i].forward(x);
  return {head(x)};
}

Tensor TransNormer::forward_with_state(const Tensor& ids, std::vector<Tensor>& states, LightningImpl impl) {
  states.resize(layers_.size());
  Tensor x = embed(ids);
  for (size_t i = 0; i < layers_.size(); ++i) {
    LightningOptions saved = layers_[i].attn.attention_options;
    layers_[i].attn.attention_options.impl = impl;
    Tensor next;
    x = layers_[i].forward(x, states[i], &next);
    layers_[i].attn.attention_options = saved;
    states[i] = next;
  }
  return head(x);
}

namespace {

class TransNormerDecoder : public Decoder {
 public:
  explicit TransNormerDecoder(TransNormer& model) : model_(model) {}
  Tensor step(const Tensor& ids) override {
    NoGradGuard no_grad;
    const LightningImpl impl = ids.size(1) == 1 ? LightningImpl::recurrent : LightningImpl::chunked;
    return model_.forward_with_state(ids, states_, impl);
  }
  int64_t state_bytes() const override {
    int64_t bytes = 0;
    for (const Tensor& s : states_) bytes += defined_bytes({s});
    return bytes;
  }

 private:
  TransNormer& model_;
  std::vector<Tensor> states_;
};

}  // namespace

std::unique_ptr<Decoder> TransNormer::decoder() { return std::make_unique<TransNormerDecoder>(*this); }

double TransNormer::train_flops_per_token(int64_t T) const {
  using flops::Pass;
  const int64_t D = config_.d_model, F = options_.mlp_hidden, H = config_.n_heads, d = D / H;
  const double L = static_cast<double>(config_.n_layers);
  // The forward per token: the projections q, k, v, output gate, o; the SGLU's two inputs and
  // output; the output head; and the chunked linear attention over the sequence (the causal
  // tiles, the inter-block q S products and the state updates), averaged over its tokens.
  const double projections =
      L * (5 * flops::linear(1, D, D, Pass::forward) + 3 * flops::linear(1, D, F, Pass::forward)) +
      flops::linear(1, D, config_.vocab_size, Pass::forward);
  const double attention =
      L * flops::lightning(1, T, H, d, d, options_.attention.block, Pass::forward) / static_cast<double>(T);
  return 3 * (projections + attention);  // backward is twice the forward
}

FamilySpec transnormer_family() {
  FamilySpec f;
  f.name = "transnormer";
  f.options = {
      OptionSpec{"mlp_hidden", int64_t{0}, "SGLU hidden width; 0 means `round(8 d_model / 3)`"}.at_least(0),
      OptionSpec{"norm_eps", 1e-6, "SRMSNorm epsilon"}.not_below(0),
      {"scale_embedding", true, "multiply the token embedding by `sqrt(d_model)` (the released code's default)"},
      {"tie_embeddings", false, "share the token embedding with the output head"},
      OptionSpec{"block", int64_t{64}, "Lightning Attention-2 block (chunk) size"}.at_least(1),
      {"attention", std::string("chunked"), "linear-attention kernel",
       {{"chunked", "the training kernel"}, {"recurrent", "reference"}, {"naive", "reference"}}},
  };
  f.renamed_options = {{"glu_hidden", "mlp_hidden"}};
  f.sequence_parallel = true;  // LASP-2
  // Blocks of 3 over the tests' 5-token sequences: the inter-block path and a partial block run too.
  f.tiny_test_options = {{"mlp_hidden", int64_t{12}}, {"block", int64_t{3}}};
  f.build = [](const ModelConfig& c, Generator& gen) -> std::unique_ptr<LanguageModel> {
    return std::make_unique<TransNormer>(c, gen);
  };
  return f;
}

}  // namespace eat::models
