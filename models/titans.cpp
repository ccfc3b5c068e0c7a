#include "models/titans.h"

#include <cmath>

#include "base/error.h"
#include "framework/flops.h"
#include "framework/parallel/halo.h"
#include "framework/parallel/time_rows.h"

namespace eat::models {

namespace {

// The memory ops take their states in q's dtype on the CPU and in f32 on CUDA (bf16 included).
Tensor as_memory_state(const Tensor& state, const Tensor& q) {
  return cast(state, q.device() == Device::cpu ? q.dtype() : DType::f32);
}

// Gate logits x W^T + b, [B, T, H].
Tensor gate_logits(const Linear& proj, const Tensor& bias, const Tensor& x) {
  return linear(x, like_activations(proj.weight, x), like_activations(bias, x));
}

// p [n, D] the same for each of the B sequences, as [B, n, H, d]: ones [B, 1] times p as one row
// (a matmul, so the gradient sums over the batch).
Tensor broadcast_batch(const Tensor& p, int64_t B, int64_t H, const Tensor& like) {
  const int64_t n = p.size(0), D = p.size(1);
  Tensor ones = Tensor::full({B, 1}, 1.0, like.dtype()).to(like.device());
  return reshape(matmul(ones, reshape(like_activations(p, like), {1, n * D})), {B, n, H, D / H});
}

}  // namespace

TitansOptions TitansOptions::from(const ModelConfig& c) {
  TitansOptions o;
  const std::string& variant = c.options.get_string("variant");
  o.variant = variant == "mal" ? TitansVariant::mal : variant == "mag" ? TitansVariant::mag : TitansVariant::lmm;
  o.memory = c.options.get_string("memory") == "mlp" ? MemoryKind::mlp : MemoryKind::linear;
  const int64_t head_dim = c.d_model / c.n_heads, hidden = c.options.get_int("memory_hidden");
  o.memory_hidden = hidden > 0 ? hidden : 4 * head_dim;
  o.memory_options.chunk = c.options.get_int("chunk");
  // The op's inner loss is the sum over the value's e entries; the mean is the same loss with
  // theta divided by e.
  const bool mean_loss = c.options.get_string("inner_loss") == "mean";
  o.memory_options.max_lr = c.options.get_float("max_lr") / (mean_loss ? static_cast<double>(head_dim) : 1.0);
  o.conv_kernel = c.options.get_int("conv_kernel");
  o.persistent = c.options.get_int("persistent");
  o.mlp_hidden = c.options.hidden_width("mlp_hidden", c.d_model);
  o.norm_eps = c.options.get_float("norm_eps");
  o.tie_embeddings = c.options.get_bool("tie_embeddings");
  o.window = TransformerOptions::for_window(c, o.mlp_hidden, o.norm_eps, o.tie_embeddings);
  return o;
}

int64_t MemoryCarry::bytes() const {
  int64_t total = defined_bytes({q, k, v, theta, eta, alpha, q_tail, k_tail, v_tail});
  for (const Tensor& s : chunk_start) total += defined_bytes({s});
  return total;
}

NeuralMemory::NeuralMemory(const ModelConfig& c, const TitansOptions& o, bool own_output, Generator& gen)
    : q_proj(add_module<Linear>("q_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      k_proj(add_module<Linear>("k_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      v_proj(add_module<Linear>("v_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      q_conv(add_module<ShortConv>("q_conv", c.d_model, o.conv_kernel, false, gen, c.dtype)),
      k_conv(add_module<ShortConv>("k_conv", c.d_model, o.conv_kernel, false, gen, c.dtype)),
      v_conv(add_module<ShortConv>("v_conv", c.d_model, o.conv_kernel, false, gen, c.dtype)),
      theta_proj(add_module<Linear>("theta_proj", c.d_model, c.n_heads, false, gen, c.init_std, c.dtype)),
      eta_proj(add_module<Linear>("eta_proj", c.d_model, c.n_heads, false, gen, c.init_std, c.dtype)),
      alpha_proj(add_module<Linear>("alpha_proj", c.d_model, c.n_heads, false, gen, c.init_std, c.dtype)),
      n_heads(c.n_heads),
      head_dim(c.d_model / c.n_heads),
      kind(o.memory),
      options(o.memory_options) {
  const int64_t H = n_heads, d = head_dim;
  // The gates start at theta = max_lr / 2, momentum eta = sigmoid(2) ~ 0.88 and forgetting
  // alpha = sigmoid(-5) ~ 0.007 (a time constant of ~150 tokens), then follow the tokens.
  theta_bias = add_parameter("theta_bias", Tensor::full({H}, 0.0, c.dtype), ParamKind::bias);
  eta_bias = add_parameter("eta_bias", Tensor::full({H}, 2.0, c.dtype), ParamKind::bias);
  alpha_bias = add_parameter("alpha_bias", Tensor::full({H}, -5.0, c.dtype), ParamKind::bias);
  if (kind == MemoryKind::linear) {
    // A linear memory may start empty (the read is then 0 until it has stored something).
    initial_state = {add_parameter("initial_w", Tensor::zeros({H, d, d}, c.dtype), ParamKind::weight)};
  } else {
    // An MLP memory may not (all its inner gradients would be 0): Xavier-normal, as lucidrains.
    const int64_t h = o.memory_hidden;
    const double std = std::sqrt(2.0 / static_cast<double>(d + h));
    initial_state = {add_parameter("initial_w1", Tensor::randn({H, d, h}, gen, std, c.dtype), ParamKind::weight),
                     add_parameter("initial_w2", Tensor::randn({H, h, d}, gen, std, c.dtype), ParamKind::weight)};
  }
  if (own_output) {
    head_norm = &add_module<RMSNorm>("head_norm", d, o.norm_eps, c.dtype);
    gate_proj = &add_module<Linear>("gate_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype);
    o_proj = &add_module<Linear>("o_proj", c.d_model, c.d_model, false, gen, residual_std(c), c.dtype);
  }
}

std::string NeuralMemory::sequence_parallel_refusal() const {
  return "the Titans memory has no sequence-parallel form yet";
}

std::pair<Tensor, std::vector<Tensor>> NeuralMemory::run(const Tensor& q, const Tensor& k, const Tensor& v,
                                                         const MemoryGateLogits& gates,
                                                         const std::vector<Tensor>& start) const {
  if (kind == MemoryKind::linear) {
    LinearMemoryState from{as_memory_state(initial_state[0], q), Tensor()};
    if (!start.empty()) from = {start[0], start[1]};
    LinearMemoryResult r = linear_memory(q, k, v, gates, from, options);
    return {r.y, {r.state.w, r.state.s}};
  }
  MlpMemoryState from{as_memory_state(initial_state[0], q), as_memory_state(initial_state[1], q), Tensor(), Tensor()};
  if (!start.empty()) from = {start[0], start[1], start[2], start[3]};
  MlpMemoryResult r = mlp_memory(q, k, v, gates, from, options);
  return {r.y, {r.state.w1, r.state.w2, r.state.s1, r.state.s2}};
}

Tensor NeuralMemory::decode(const Tensor& q, const Tensor& k, const Tensor& v, const MemoryGateLogits& gates,
                            MemoryCarry& carry) const {
  // The unfinished chunk's earlier tokens, then this call's: chunks count from the chunk start.
  const Tensor jq = append_time(carry.q, q), jk = append_time(carry.k, k), jv = append_time(carry.v, v);
  const Tensor jt = append_time(carry.theta, gates.theta), je = append_time(carry.eta, gates.eta),
               ja = append_time(carry.alpha, gates.alpha);
  const int64_t n = jq.size(1), whole = n / options.chunk * options.chunk;
  auto part = [&](int64_t begin, int64_t end) {
    return run(narrow_time(jq, begin, end), narrow_time(jk, begin, end), narrow_time(jv, begin, end),
               {narrow_time(jt, begin, end), narrow_time(je, begin, end), narrow_time(ja, begin, end)}, carry.chunk_start);
  };
  Tensor y;
  if (whole > 0) {
    auto [y_whole, state] = part(0, whole);
    y = y_whole;
    carry.chunk_start = std::move(state);  // the state at the new last chunk boundary
  }
  if (whole < n) y = append_time(y, part(whole, n).first);
  auto keep = [&](const Tensor& x) { return whole < n ? narrow_time(x, whole, n) : Tensor(); };
  carry.q = keep(jq), carry.k = keep(jk), carry.v = keep(jv);
  carry.theta = keep(jt), carry.eta = keep(je), carry.alpha = keep(ja);
  return last_rows(y, q.size(1));
}

Tensor NeuralMemory::read(const Tensor& x, MemoryCarry* carry) const {
  const Shape heads{x.size(0), x.size(1), n_heads, head_dim};
  auto conv = [&](const ShortConv& c, const Tensor& u, Tensor* tail) { return tail ? c.forward(u, *tail) : c.forward(u); };
  const Tensor q = l2_normalize(reshape(silu(conv(q_conv, q_proj.forward(x), carry ? &carry->q_tail : nullptr)), heads), 1e-6);
  const Tensor k = l2_normalize(reshape(silu(conv(k_conv, k_proj.forward(x), carry ? &carry->k_tail : nullptr)), heads), 1e-6);
  const Tensor v = reshape(silu(conv(v_conv, v_proj.forward(x), carry ? &carry->v_tail : nullptr)), heads);
  const MemoryGateLogits gates{gate_logits(theta_proj, theta_bias, x), gate_logits(eta_proj, eta_bias, x),
                               gate_logits(alpha_proj, alpha_bias, x)};
  return carry ? decode(q, k, v, gates, *carry) : run(q, k, v, gates, {}).first;
}

Tensor NeuralMemory::forward(const Tensor& x, MemoryCarry* carry) const {
  EAT_CHECK(o_proj, "titans: this memory layer has no output of its own (MAG gates its read)");
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  Tensor y = reshape(head_norm->forward(read(x, carry)), {B, T, D});
  return o_proj->forward(glu_gate(gate_proj->forward(x), y, GateActivation::silu));
}

PersistentAttention::PersistentAttention(const ModelConfig& c, const TitansOptions& o, Generator& gen)
    : CausalSelfAttention(c, o.window, gen), persistent(o.persistent) {
  // Drawn, not zero: identical pairs would get identical gradients and stay one pair.
  if (persistent > 0) {
    persistent_keys = add_parameter("persistent_keys", Tensor::randn({persistent, c.d_model}, gen, c.init_std, c.dtype),
                                    ParamKind::embedding);
    persistent_values = add_parameter(
        "persistent_values", Tensor::randn({persistent, c.d_model}, gen, c.init_std, c.dtype), ParamKind::embedding);
  }
}

Tensor PersistentAttention::attend_heads(const Tensor& x, const Tensor& q, const Tensor& keys, const Tensor& values,
                                         const AttentionOptions& options) const {
  if (persistent == 0) return CausalSelfAttention::attend_heads(x, q, keys, values, options);
  const int64_t B = q.size(0);
  AttentionOptions with_prefix = options;
  with_prefix.prefix = persistent;
  return attention(q, concat_time(broadcast_batch(persistent_keys, B, n_heads, q), keys),
                   concat_time(broadcast_batch(persistent_values, B, n_heads, q), values), with_prefix);
}

MemoryGatedAttention::MemoryGatedAttention(const ModelConfig& c, const TitansOptions& o, Generator& gen)
    : attn(add_module<PersistentAttention>("attn", c, o, gen)),
      memory(add_module<NeuralMemory>("memory", c, o, false, gen)),
      attn_gate_norm(add_module<RMSNorm>("attn_gate_norm", c.d_model, o.norm_eps, c.dtype)),
      memory_gate_norm(add_module<RMSNorm>("memory_gate_norm", c.d_model, o.norm_eps, c.dtype)) {}

Tensor MemoryGatedAttention::forward(const Tensor& x, TitansLayerState* state, int64_t position) const {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  Tensor y = state ? attn.heads_output_cached(x, state->window, position) : attn.heads_output(x);
  Tensor m = reshape(memory.read(x, state ? &state->memory : nullptr), {B, T, D});
  return attn.o_proj.forward(mul(attn_gate_norm.forward(y), sigmoid(memory_gate_norm.forward(m))));
}

TitansBlock::TitansBlock(const ModelConfig& c, const TitansOptions& o, Generator& gen)
    : mlp_norm(add_module<RMSNorm>("mlp_norm", c.d_model, o.norm_eps, c.dtype)),
      mlp(add_module<SwiGLU>("mlp", c.d_model, o.mlp_hidden, gen, c.init_std, c.dtype, residual_std(c))) {
  if (o.variant == TitansVariant::mag) {
    gated_norm = &add_module<RMSNorm>("mixer_norm", c.d_model, o.norm_eps, c.dtype);
    gated = &add_module<MemoryGatedAttention>("mag", c, o, gen);
    return;
  }
  memory_norm = &add_module<RMSNorm>("memory_norm", c.d_model, o.norm_eps, c.dtype);
  memory = &add_module<NeuralMemory>("memory", c, o, true, gen);
  if (o.variant == TitansVariant::mal) {
    window_norm = &add_module<RMSNorm>("window_norm", c.d_model, o.norm_eps, c.dtype);
    window = &add_module<PersistentAttention>("window", c, o, gen);
  }
}

Tensor TitansBlock::forward(const Tensor& x, TitansLayerState* state, int64_t position) const {
  Tensor h = x;
  if (memory) h = add(h, memory->forward(memory_norm->forward(h), state ? &state->memory : nullptr));
  if (window) {
    Tensor n = window_norm->forward(h);
    h = add(h, state ? window->forward_cached(n, state->window, position) : window->forward(n));
  }
  if (gated) h = add(h, gated->forward(gated_norm->forward(h), state, position));
  return add(h, mlp.forward(mlp_norm.forward(h)));
}

Titans::Titans(const ModelConfig& c, Generator& gen)
    : BlockStack("titans", c, c.options.get_float("norm_eps"), gen), config_(c), options_(TitansOptions::from(c)) {
  for (int64_t l = 0; l < c.n_layers; ++l) layers().append(c, options_, gen);
  add_head(c, options_.tie_embeddings, gen);
}

double Titans::train_flops_per_token(int64_t T) const {
  using flops::Pass;
  const int64_t D = config_.d_model, F = options_.mlp_hidden, H = config_.n_heads, d = D / H;
  const int64_t b = options_.memory_options.chunk;
  // The memory op per token (its chunks' work over the sequence).
  const double memory_op =
      (options_.memory == MemoryKind::linear
           ? flops::linear_memory(1, T, H, d, d, b, Pass::forward)
           : flops::mlp_memory(1, T, H, d, options_.memory_hidden, d, b, Pass::forward)) /
      static_cast<double>(T);
  // The memory read: q, k, v projections, their convs, the gates, and the op.
  const double read = 3 * flops::linear(1, D, D, Pass::forward) + flops::short_conv(1, 1, 3 * D, options_.conv_kernel, Pass::forward) +
                      3 * flops::linear(1, D, H, Pass::forward) + memory_op;
  const double own_output = 2 * flops::linear(1, D, D, Pass::forward);  // gate_proj, o_proj
  const double attention = 4 * flops::linear(1, D, D, Pass::forward) +
                           flops::attention(1, T, H, d, d, true, options_.window.window, Pass::forward) / static_cast<double>(T) +
                           4.0 * options_.persistent * D;  // the persistent keys' scores and values
  double layer = 3 * flops::linear(1, D, F, Pass::forward);
  switch (options_.variant) {
    case TitansVariant::lmm: layer += read + own_output; break;
    case TitansVariant::mal: layer += read + own_output + attention; break;
    case TitansVariant::mag: layer += read + attention; break;
  }
  const double forward = static_cast<double>(config_.n_layers) * layer + flops::linear(1, D, config_.vocab_size, Pass::forward);
  return 3 * forward;  // backward is twice the forward
}

FamilySpec titans_family() {
  FamilySpec f;
  f.name = "titans";
  f.options = {
      {"variant", std::string("lmm"), "how the memory joins the attention",
       {{"lmm", "the memory layer alone (Titans (LMM))"},
        {"mal", "memory as a layer: the memory layer, then sliding-window attention, in every block"},
        {"mag", "memory as a gate: sliding-window attention and the memory read gate each other"}}},
      {"memory", std::string("linear"), "the memory network M per head",
       {{"linear", "M(k) = k W"}, {"mlp", "M(k) = silu(k W1) W2, two layers"}}},
      OptionSpec{"memory_hidden", int64_t{0}, "hidden width of the MLP memory; 0 means `4 d_model / n_heads`"}.at_least(0),
      OptionSpec{"chunk", int64_t{16},
                 "b: the memory's gradients of a chunk of b tokens are taken at the chunk-start state (1: the exact "
                 "online rule); part of the model, like the weights"}
          .at_least(1),
      OptionSpec{"max_lr", 0.1, "upper bound of the memory's learning rate: theta = max_lr * sigmoid(x W + b)"}.above(0),
      {"inner_loss", std::string("mean"), "the memory's loss ||M(k) - v||^2 over the value's entries",
       {{"mean", "their mean (the spec's advice: an MLP memory diverges with the sum as v grows)"},
        {"sum", "their sum (the paper's eq 12; a linear memory's step on a unit key is then 2 theta, but at seq_len 4096 it still diverged)"}}},
      OptionSpec{"conv_kernel", int64_t{4}, "depthwise causal convolution on q, k and v"}.at_least(1),
      OptionSpec{"persistent", int64_t{4}, "N_p learned key/value pairs per head that every query of the attention sees (mal, mag)"}
          .at_least(0),
      OptionSpec{"window", int64_t{1024}, "sliding-window attention (mal, mag): each query sees itself and `window` earlier keys"}
          .at_least(0),
      OptionSpec{"mlp_hidden", int64_t{0}, "SwiGLU hidden width (every block); 0 means `round(8 d_model / 3)`"}.at_least(0),
      OptionSpec{"rope_theta", 10000.0, "RoPE base of the attention"}.above(0),
      OptionSpec{"norm_eps", 1e-6, "RMSNorm epsilon"}.not_below(0),
      {"tie_embeddings", false, "share the token embedding with the output head"},
  };
  // Two MAG layers with an MLP memory (every module of the family but the lmm/mal sublayers, which
  // tests/models/test_titans.cpp covers): chunks of 2 over the tests' 5 tokens, a window of 2
  // keys back and 2 persistent pairs.
  f.tiny_test_options = {{"mlp_hidden", int64_t{12}}, {"variant", std::string("mag")}, {"memory", std::string("mlp")},
                         {"memory_hidden", int64_t{6}}, {"chunk", int64_t{2}},          {"persistent", int64_t{2}},
                         {"window", int64_t{2}}};
  f.check = [](const ModelConfig& c, int64_t, int64_t) -> std::string {
    if (c.options.get_string("variant") != "lmm" && (c.d_model / c.n_heads) % 2 != 0)
      return "variant = \"" + c.options.get_string("variant") +
             "\" has sliding-window attention with RoPE: the head dimension d_model / n_heads must be even";
    return "";
  };
  f.build = [](const ModelConfig& c, Generator& gen) -> std::unique_ptr<LanguageModel> {
    return std::make_unique<Titans>(c, gen);
  };
  return f;
}

}  // namespace eat::models
