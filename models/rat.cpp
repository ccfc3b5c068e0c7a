#include "models/rat.h"

#include <cmath>

#include "base/error.h"
#include "framework/comm/comm_stats.h"
#include "framework/flops.h"
#include "framework/parallel/halo.h"
#include "framework/parallel/time_join.h"
#include "framework/parallel/time_rows.h"

namespace eat::models {

namespace {

// x [B, T, ...] with its time axis replaced by `rows` and the trailing axes kept.
Shape with_rows(const Tensor& x, int64_t batch, int64_t rows) {
  Shape s = x.shape();
  s[0] = batch;
  s[1] = rows;
  return s;
}

// The chunk summaries of a sequence that starts at a chunk start: rows L-1, 2L-1, ... of x
// [B, T, H, w] (a trailing partial chunk has none), [B, T / L, H, w], differentiably: the rows
// of whole chunks viewed as [B (T / L), L, H, w], of which the last row of each.
Tensor chunk_summaries(const Tensor& x, int64_t L) {
  const int64_t B = x.size(0), n = x.size(1) / L;
  if (n == 0) return Tensor::zeros(with_rows(x, B, 0), x.dtype(), x.device());
  Tensor chunks = reshape(narrow_time(x, 0, n * L), with_rows(x, B * n, L));
  return reshape(narrow_time(chunks, L - 1, L), with_rows(x, B, n));
}

// Decoding: the summaries of the chunks that end inside x [B, T, H, w], whose token 0 is token
// `position` of the sequence: the rows t with (position + t) % L == L - 1 (not differentiable).
Tensor finished_chunk_summaries(const Tensor& x, int64_t L, int64_t position) {
  const int64_t first = L - 1 - position % L, T = x.size(1);
  const int64_t n = first < T ? (T - 1 - first) / L + 1 : 0;
  Tensor out = Tensor::empty(with_time(x, n), x.dtype(), x.device());
  for (int64_t i = 0; i < n; ++i) copy_time(x, first + i * L, out, i, 1);
  return out;
}

// The last row of x [B, T, C] as [B, C]: the running state the next decoding call starts from.
Tensor last_state(const Tensor& x) { return reshape(last_rows(x, 1), {x.size(0), x.size(2)}); }

}  // namespace

RatOptions RatOptions::from(const ModelConfig& c) {
  RatOptions o;
  const int64_t hidden = c.options.get_int("mlp_hidden");
  o.mlp_hidden = hidden > 0 ? hidden : 4 * c.d_model;
  o.norm_eps = c.options.get_float("norm_eps");
  o.tie_embeddings = c.options.get_bool("tie_embeddings");
  o.chunk = c.options.get_int("chunk");
  o.ngroups = c.options.get_int("ngroups");
  o.rope_theta = c.options.get_float("rope_theta");
  o.window_layer.assign(static_cast<size_t>(c.n_layers), false);
  for (int64_t l : c.options.get_int_list("window_layers")) o.window_layer.at(static_cast<size_t>(l)) = true;
  o.window = TransformerOptions::for_window(c, o.mlp_hidden, o.norm_eps, o.tie_embeddings);
  return o;
}

// Every projection starts N(0, init_std^2) (the reference's "fixed" init, no residual scaling).
RatLayer::RatLayer(const ModelConfig& c, const RatOptions& o, Generator& gen)
    : z_proj(add_module<Linear>("z_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      v_proj(add_module<Linear>("v_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      g_proj(add_module<Linear>("g_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      q_proj(add_module<Linear>("q_proj", c.d_model, o.ngroups * (c.d_model / c.n_heads), false, gen, c.init_std,
                                c.dtype)),
      k_proj(add_module<Linear>("k_proj", c.d_model, o.ngroups * (c.d_model / c.n_heads), false, gen, c.init_std,
                                c.dtype)),
      out_proj(add_module<Linear>("out_proj", c.d_model, c.d_model, false, gen, c.init_std, c.dtype)),
      n_heads(c.n_heads),
      head_dim(c.d_model / c.n_heads),
      ngroups(o.ngroups),
      chunk(o.chunk),
      rope_theta(o.rope_theta) {
  // Chrono-style gate bias (the reference's init): log U(1, L - 1), so the forget gate's time
  // constant starts between 1 and L - 1 tokens; 0 for L <= 2, where the range is empty.
  std::vector<double> bias(static_cast<size_t>(c.d_model), 0.0);
  if (chunk > 2)
    for (double& b : bias) b = std::log(1.0 + gen.uniform() * static_cast<double>(chunk - 2));
  gate_bias = add_parameter("gate_bias", Tensor::from_vector<double>(bias, {c.d_model}).to(c.dtype), ParamKind::bias);
}

Tensor RatLayer::forward(const Tensor& x, RatLayerState* state, int64_t position) const {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  const bool split = sequence_split();
  EAT_CHECK(!(split && state), "rat: decoding with states and sequence parallelism do not mix");
  int64_t start = position;  // the sequence position of token 0
  if (split) {
    // The scan restarts at chunk starts only: a share that ends inside a chunk would need the
    // previous rank's running state.
    EAT_CHECK(T % chunk == 0, "rat: under sequence parallelism each rank holds whole chunks, but its ", T,
              " tokens (data.seq_len / parallel.sp) are not a multiple of model.rat.chunk = ", chunk);
    start = static_cast<int64_t>(sp_group().rank()) * T;
  }
  const Shape heads{B, T, n_heads, head_dim};
  Tensor z = sigmoid(z_proj.forward(x));
  Tensor v = v_proj.forward(x);
  Tensor gate_logit = linear(x, like_activations(g_proj.weight, x), like_activations(gate_bias, x));
  // Head h reads q/k group h % ngroups; k is widened to D before the scan, whose per-channel gate
  // then makes every head's keys its own.
  Tensor q = reshape(tile_last(q_proj.forward(x), n_heads / ngroups), heads);
  Tensor k = tile_last(k_proj.forward(x), n_heads / ngroups);
  const int64_t phase = start % chunk;
  Tensor key_run = chunk_scan(k, gate_logit, chunk, state ? state->key_run : Tensor(), phase);
  Tensor value_run = chunk_scan(v, gate_logit, chunk, state ? state->value_run : Tensor(), phase);
  // Chunk-level RoPE at the global chunk index, before the summaries are taken (and gathered).
  Tensor qr = rope(q, rope_theta, start, chunk);
  Tensor kr = rope(reshape(key_run, heads), rope_theta, start, chunk);
  Tensor vr = reshape(value_run, heads);
  Tensor key_summaries, value_summaries;
  if (state) {
    state->key_summaries = append_time(state->key_summaries, finished_chunk_summaries(kr, chunk, start));
    state->value_summaries = append_time(state->value_summaries, finished_chunk_summaries(vr, chunk, start));
    state->key_run = last_state(key_run);
    state->value_run = last_state(value_run);
    key_summaries = state->key_summaries;
    value_summaries = state->value_summaries;
  } else {
    key_summaries = chunk_summaries(kr, chunk);
    value_summaries = chunk_summaries(vr, chunk);
    if (split) {
      // Every rank's summaries, in chunk order: 2 D numbers per chunk and sequence.
      CommLabel scope(comm_label());
      key_summaries = gather_time(key_summaries, sp_group());
      value_summaries = gather_time(value_summaries, sp_group());
    }
  }
  Tensor y = summary_attention(qr, kr, vr, key_summaries, value_summaries, {.chunk = chunk, .query_offset = start});
  return out_proj.forward(mul(z, reshape(y, {B, T, D})));
}

RatBlock::RatBlock(const ModelConfig& c, const RatOptions& o, int64_t layer, Generator& gen)
    : mixer_norm(add_module<RMSNorm>("mixer_norm", c.d_model, o.norm_eps, c.dtype)),
      mlp_norm(add_module<RMSNorm>("mlp_norm", c.d_model, o.norm_eps, c.dtype)),
      mlp(add_module<GeluMLP>("mlp", c.d_model, o.mlp_hidden, gen, c.init_std, c.dtype)) {
  if (o.window_layer.at(static_cast<size_t>(layer)))
    window = &add_module<CausalSelfAttention>("window", c, o.window, gen);
  else
    rat = &add_module<RatLayer>("rat", c, o, gen);
}

Tensor RatBlock::forward(const Tensor& x, RatLayerState* state, int64_t position) const {
  Tensor n = mixer_norm.forward(x);
  Tensor m = rat     ? rat->forward(n, state, position)
             : state ? window->forward_cached(n, state->window, position)
                     : window->forward(n);
  Tensor h = add(x, m);
  return mlp.forward(mlp_norm.forward(h), h);
}

Rat::Rat(const ModelConfig& c, Generator& gen)
    : BlockStack("rat", c, c.options.get_float("norm_eps"), gen), config_(c), options_(RatOptions::from(c)) {
  for (int64_t l = 0; l < c.n_layers; ++l) layers().append(c, options_, l, gen);
  add_head(c, options_.tie_embeddings, gen);
}

double Rat::train_flops_per_token(int64_t T) const {
  using flops::Pass;
  const int64_t D = config_.d_model, F = options_.mlp_hidden, H = config_.n_heads, d = D / H;
  const int64_t qk = options_.ngroups * d;
  // The forward per token: every layer's GELU MLP and its mixer's projections and sequence work
  // (averaged over the sequence's tokens), and the output head.
  double forward = flops::linear(1, D, config_.vocab_size, Pass::forward);
  for (bool is_window : options_.window_layer) {
    forward += 2 * flops::linear(1, D, F, Pass::forward);
    if (is_window) {
      forward += 4 * flops::linear(1, D, D, Pass::forward) +
                 flops::attention(1, T, H, d, d, true, options_.window.window, Pass::forward) / static_cast<double>(T);
    } else {
      forward += flops::linear(1, D, 3 * D + 2 * qk, Pass::forward) + flops::linear(1, D, D, Pass::forward) +
                 flops::summary_attention(1, T, H, d, d, T / options_.chunk, options_.chunk, 0, Pass::forward) /
                     static_cast<double>(T);
    }
  }
  return 3 * forward;  // backward is twice the forward
}

FamilySpec rat_family() {
  FamilySpec f;
  f.name = "rat";
  f.options = {
      OptionSpec{"mlp_hidden", int64_t{0}, "GELU MLP hidden width (every block); 0 means `4 d_model`"}.at_least(0),
      OptionSpec{"norm_eps", 1e-6, "RMSNorm epsilon"}.not_below(0),
      {"tie_embeddings", true, "share the token embedding with the output head"},
      OptionSpec{
          "chunk", int64_t{16},
          "RAT chunk length L: the gated scan restarts every L tokens and attention runs over the chunks' summaries"}
          .at_least(1),
      OptionSpec{"ngroups", int64_t{2},
                 "low-rank q/k groups shared by the heads (head h reads group h % ngroups); divides n_heads"}
          .at_least(1),
      OptionSpec{"rope_theta", 10000.0, "RoPE base (chunk-level RoPE of the RAT layers, token RoPE of the window layers)"}
          .above(0),
      {"window_layers", IntList{},
       "layers (from 0) whose mixer is sliding-window softmax attention (the RAT-SWA hybrid); every other layer is "
       "RAT"},
      OptionSpec{"window", int64_t{1024}, "sliding-window layers: each query sees itself and `window` earlier keys"}
          .at_least(0),
  };
  f.sequence_parallel = true;  // RAT: the chunk summaries' AllGather; windows: the K/V halo
  // Two layers, RAT (chunks of 2 over the tests' 5 tokens: several chunks and a partial one, the
  // two heads sharing one q/k group) and a sliding window of 2 keys back.
  f.tiny_test_options = {{"mlp_hidden", int64_t{12}},
                         {"chunk", int64_t{2}},
                         {"ngroups", int64_t{1}},
                         {"window_layers", IntList{1}},
                         {"window", int64_t{2}}};
  f.check = [](const ModelConfig& c, int64_t seq_len, int64_t sp) -> std::string {
    const int64_t ngroups = c.options.get_int("ngroups"), chunk = c.options.get_int("chunk");
    if (c.n_heads % ngroups != 0)
      return "ngroups = " + std::to_string(ngroups) + " must divide model.n_heads = " + std::to_string(c.n_heads);
    if ((c.d_model / c.n_heads) % 2 != 0) return "the head dimension d_model / n_heads must be even for RoPE";
    if (std::string why = check_layer_list("window_layers", c.options.get_int_list("window_layers"), c.n_layers);
        !why.empty())
      return why;
    if (sp > 1 && (seq_len / sp) % chunk != 0)
      return "chunk = " + std::to_string(chunk) + ": under parallel.sp = " + std::to_string(sp) +
             " each rank holds whole chunks, but data.seq_len / sp = " + std::to_string(seq_len / sp) +
             " tokens is not a multiple of it";
    return "";
  };
  f.build = [](const ModelConfig& c, Generator& gen) -> std::unique_ptr<LanguageModel> {
    return std::make_unique<Rat>(c, gen);
  };
  return f;
}

}  // namespace eat::models
