#include "models/moh.h"

#include <string>

#include "base/error.h"
#include "framework/flops.h"
#include "framework/parallel/collective_ops.h"

namespace eat::models {

MohOptions MohOptions::from(const ModelConfig& c) {
  MohOptions o;
  o.base.mlp_hidden = c.options.hidden_width("mlp_hidden", c.d_model);
  o.base.rope_theta = c.options.get_float("rope_theta");
  o.base.norm_eps = c.options.get_float("norm_eps");
  o.base.tie_embeddings = c.options.get_bool("tie_embeddings");
  o.base.window = -1;
  o.base.attention_impl = AttentionImpl::tiled;
  o.shared_heads = c.options.get_int("shared_heads");
  o.top_k = c.options.get_int("top_k");
  o.balance_weight = c.options.get_float("balance_weight");
  return o;
}

MohAttention::MohAttention(const ModelConfig& c, const MohOptions& o, Generator& gen)
    : CausalSelfAttention(c, o.base, gen),
      routed_router(add_module<Linear>("routed_router", c.d_model, c.n_heads - o.shared_heads, false, gen, c.init_std,
                                       c.dtype)),
      shared_heads(o.shared_heads),
      top_k(o.top_k) {
  if (shared_heads > 0) {
    shared_router = &add_module<Linear>("shared_router", c.d_model, shared_heads, false, gen, c.init_std, c.dtype);
    mix_router = &add_module<Linear>("mix_router", c.d_model, 2, false, gen, c.init_std, c.dtype);
  }
}

Tensor MohAttention::attend_heads(const Tensor& x, const Tensor& q, const Tensor& keys, const Tensor& values,
                                  const AttentionOptions& options) const {
  // The router in the parameters' type: f32 (the masters) under bf16 mixed precision, as the
  // reference runs its softmaxes and top-k in f32.
  const Tensor xr = cast(x, routed_router.weight.dtype());
  const MohGates g = moh_gates(shared_router ? shared_router->forward(xr) : Tensor(), routed_router.forward(xr),
                               mix_router ? mix_router->forward(xr) : Tensor(), top_k);
  Tensor heads = gated_attention(q, keys, values, cast(g.gates, q.dtype()), options);
  // The load-balance statistics over the micro-batch's tokens: column sums of the routed
  // probabilities (differentiable) and of the selections, summed over the sequence-parallel group
  // so that every rank's term is the whole sequence's (spec section 7).
  const int64_t R = routed_router.weight.size(0), N = x.size(0) * x.size(1);
  Tensor ones = Tensor::zeros({1, N}, g.routed_probs.dtype(), g.routed_probs.device());
  ones.fill_(1.0);
  Tensor prob_sums = matmul(ones, reshape(g.routed_probs, {N, R}));
  Tensor counts = matmul(ones, reshape(g.selected, {N, R}));
  double tokens = static_cast<double>(N);
  if (sequence_split()) {
    prob_sums = all_reduce_sum_op(sp_group(), prob_sums);
    counts = all_reduce_sum_op(sp_group(), counts);
    tokens *= sp_group().size();
  }
  // E sum_i me_i ce_i with me = prob_sums / tokens and ce = counts / tokens (the reference's l_aux).
  last_.balance = scale(sum(mul(prob_sums, counts)), static_cast<double>(R) / (tokens * tokens));
  last_.use = reshape(scale(counts, 1.0 / tokens), {R});
  return heads;
}

Moh::Moh(const ModelConfig& c, Generator& gen)
    : BlockStack("moh", c, c.options.get_float("norm_eps"), gen), config_(c), options_(MohOptions::from(c)) {
  for (int64_t l = 0; l < c.n_layers; ++l)
    layers().append(c, options_.base, gen, [&]() -> std::unique_ptr<CausalSelfAttention> {
      auto attention = std::make_unique<MohAttention>(c, options_, gen);
      attention_.push_back(attention.get());
      return attention;
    });
  add_head(c, options_.base.tie_embeddings, gen);
}

ModelOutput Moh::forward(const Tensor& ids) {
  ModelOutput out = BlockStack::forward(ids);
  Tensor balance;
  for (const MohAttention* a : attention_)
    balance = balance.defined() ? add(balance, a->last_routing().balance) : a->last_routing().balance;
  out.aux.push_back({"balance", scale(balance, 1.0 / static_cast<double>(attention_.size())), options_.balance_weight});
  for (size_t l = 0; l < attention_.size(); ++l) {
    const Tensor& use = attention_[l]->last_routing().use;
    for (int64_t i = 0; i < use.size(0); ++i)
      out.aux.push_back({"use_l" + std::to_string(l) + "_h" + std::to_string(options_.shared_heads + i),
                         slice_outer(use, i, i + 1), 0.0});
  }
  return out;
}

double Moh::train_flops_per_token(int64_t T) const {
  using flops::Pass;
  const int64_t D = config_.d_model, F = options_.base.mlp_hidden, H = config_.n_heads, d = D / H;
  const int64_t routers = options_.shared_heads > 0 ? H + 2 : H;
  const double L = static_cast<double>(config_.n_layers);
  // The forward per token: the transformer's projections, the router's three small ones, and
  // causal attention over the sequence for the active heads only (shared_heads + top_k of H).
  const double projections = L * (4 * flops::linear(1, D, D, Pass::forward) + 3 * flops::linear(1, D, F, Pass::forward) +
                                   flops::linear(1, D, routers, Pass::forward)) +
                             flops::linear(1, D, config_.vocab_size, Pass::forward);
  const double active = static_cast<double>(options_.shared_heads + options_.top_k) / static_cast<double>(H);
  const double attention =
      L * active * flops::attention(1, T, H, d, d, true, -1, Pass::forward) / static_cast<double>(T);
  return 3 * (projections + attention);  // backward is twice the forward
}

FamilySpec moh_family() {
  FamilySpec f;
  f.name = "moh";
  f.options = {
      OptionSpec{"mlp_hidden", int64_t{0}, "SwiGLU hidden width; 0 means `round(8 d_model / 3)`"}.at_least(0),
      OptionSpec{"rope_theta", 10000.0, "RoPE base"}.above(0),
      OptionSpec{"norm_eps", 1e-5, "RMSNorm epsilon"}.not_below(0),
      {"tie_embeddings", false, "share the token embedding with the output head"},
      OptionSpec{"shared_heads", int64_t{1}, "heads every token uses (the first ones); the others are routed"}.at_least(0),
      OptionSpec{"top_k", int64_t{2}, "routed heads each token uses, chosen by its router"}.at_least(1),
      {"balance_weight", 0.01, "weight of the load-balance loss (the paper's beta) in the training loss"},
  };
  f.sequence_parallel = true;  // LASP-2H over every head's keys and values; the balance statistics all-reduced
  // Two heads, both routed, one of them per token: the sparse path and the router without shared
  // heads; tests/models/test_moh.cpp covers shared heads.
  f.tiny_test_options = {{"mlp_hidden", int64_t{12}}, {"shared_heads", int64_t{0}}, {"top_k", int64_t{1}}};
  f.check = [](const ModelConfig& c, int64_t, int64_t) -> std::string {
    const int64_t shared = c.options.get_int("shared_heads"), k = c.options.get_int("top_k");
    const int64_t routed = c.n_heads - shared;
    if (routed < 1)
      return "shared_heads = " + std::to_string(shared) + " leaves no routed head (model.n_heads = " +
             std::to_string(c.n_heads) + ")";
    if (routed > 64) return "shared_heads = " + std::to_string(shared) + " leaves " + std::to_string(routed) +
                            " routed heads; the router takes at most 64";
    if (k > routed)
      return "top_k = " + std::to_string(k) + " is more than the " + std::to_string(routed) +
             " routed heads (model.n_heads - shared_heads)";
    if (c.options.get_float("balance_weight") < 0) return "balance_weight must be >= 0";
    if ((c.d_model / c.n_heads) % 2 != 0) return "the head dimension d_model / n_heads must be even for RoPE";
    return "";
  };
  f.build = [](const ModelConfig& c, Generator& gen) -> std::unique_ptr<LanguageModel> {
    return std::make_unique<Moh>(c, gen);
  };
  return f;
}

}  // namespace eat::models
