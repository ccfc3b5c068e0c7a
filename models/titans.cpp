#include "models/titans.h"

#include <cmath>
#include <tuple>
#include <utility>

#include "base/error.h"
#include "framework/flops.h"
#include "framework/ops/joins.h"
#include "framework/comm/comm_stats.h"
#include "framework/parallel/collective_ops.h"
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

// p the same for each of the B sequences, as [B, ...p's shape] in like's dtype: ones [B, 1] times
// p as one row (a matmul, so the gradient sums over the batch).
Tensor repeat_batch(const Tensor& p, int64_t B, const Tensor& like) {
  Tensor ones = Tensor::full({B, 1}, 1.0, like.dtype()).to(like.device());
  Shape shape = p.shape();
  shape.insert(shape.begin(), B);
  return reshape(matmul(ones, reshape(like_activations(p, like), {1, p.numel()})), shape);
}

// The inputs of sequences [begin, end) of the batch (views; `in` itself when that is all of it).
MemoryInputs batch_rows(const MemoryInputs& in, int64_t begin, int64_t end) {
  if (begin == 0 && end == in.q.size(0)) return in;
  auto rows = [&](const Tensor& t) { return slice_outer(t, begin, end); };
  return {rows(in.q), rows(in.k), rows(in.v), {rows(in.gates.theta), rows(in.gates.eta), rows(in.gates.alpha)}};
}

// The inputs of heads [begin, end) (copies; `in` itself when that is all of them).
MemoryInputs head_rows(const MemoryInputs& in, int64_t begin, int64_t end) {
  const int64_t B = in.q.size(0), T = in.q.size(1), H = in.q.size(2);
  if (begin == 0 && end == H) return in;
  auto heads = [&](const Tensor& t, Shape shape) {  // [B, T, H, ...] -> [B, T, end - begin, ...]
    const Tensor rows = narrow_time(reshape(t, {B * T, H, t.numel() / (B * T * H)}), begin, end);
    return reshape(rows, shape);
  };
  auto vectors = [&](const Tensor& t) { return heads(t, {B, T, end - begin, t.size(3)}); };
  auto scalars = [&](const Tensor& t) { return heads(t, {B, T, end - begin}); };
  return {vectors(in.q), vectors(in.k), vectors(in.v), {scalars(in.gates.theta), scalars(in.gates.eta), scalars(in.gates.alpha)}};
}

// The slices' outputs one after another on the batch axis.
Tensor join_batch(const std::vector<Tensor>& parts) { return parts.size() == 1 ? parts[0] : concat_outer(parts); }

// p [n, D] as [B, n, H, D / H].
Tensor broadcast_batch(const Tensor& p, int64_t B, int64_t H, const Tensor& like) {
  return reshape(repeat_batch(p, B, like), {B, p.size(0), H, p.size(1) / H});
}

// a and b [B, C, D] as one sequence a_1 b_1 a_2 b_2 ... [B, 2C, D], and back: the b rows.
Tensor interleave(const Tensor& a, const Tensor& b) {
  const int64_t B = a.size(0), C = a.size(1), D = a.size(2);
  return reshape(concat_time(reshape(a, {B * C, 1, D}), reshape(b, {B * C, 1, D})), {B, 2 * C, D});
}
Tensor second_of_pairs(const Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1) / 2, D = x.size(2);
  return reshape(narrow_time(reshape(x, {B * C, 2, D}), 1, 2), {B, C, D});
}

// The parts of a sequence joined on the time axis, pairwise (each row is copied log2(n) times,
// not n times as a left fold would).
Tensor concat_all(std::vector<Tensor> parts) {
  while (parts.size() > 1) {
    std::vector<Tensor> joined;
    for (size_t i = 0; i + 1 < parts.size(); i += 2) joined.push_back(concat_time(parts[i], parts[i + 1]));
    if (parts.size() % 2 == 1) joined.push_back(parts.back());
    parts = std::move(joined);
  }
  return parts.front();
}

}  // namespace

TitansOptions TitansOptions::from(const ModelConfig& c) {
  TitansOptions o;
  const std::string& variant = c.options.get_string("variant");
  o.variant = variant == "mal"   ? TitansVariant::mal
              : variant == "mag" ? TitansVariant::mag
              : variant == "mac" ? TitansVariant::mac
                                 : TitansVariant::lmm;
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
  o.segment = c.options.get_int("segment");
  o.mlp_hidden = c.options.hidden_width("mlp_hidden", c.d_model);
  o.norm_eps = c.options.get_float("norm_eps");
  o.tie_embeddings = c.options.get_bool("tie_embeddings");
  o.window = TransformerOptions::for_window(c, o.mlp_hidden, o.norm_eps, o.tie_embeddings);
  return o;
}

int64_t MemoryCarry::bytes() const {
  int64_t total = defined_bytes({q, k, v, theta, eta, alpha, tails.q, tails.k, tails.v});
  for (const Tensor& s : chunk_start) total += defined_bytes({s});
  return total;
}

int64_t SegmentCarry::bytes() const {
  int64_t total = defined_bytes({tails.q, tails.k, tails.v, retrieval_tail, pending});
  for (const Tensor& s : state) total += defined_bytes({s});
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


std::pair<Tensor, std::vector<Tensor>> NeuralMemory::run(const MemoryInputs& in, const std::vector<Tensor>& start) const {
  const Tensor& q = in.q;
  if (kind == MemoryKind::linear) {
    LinearMemoryState from{as_memory_state(initial_state[0], q), Tensor()};
    if (!start.empty()) from = {start[0], start[1]};
    LinearMemoryResult r = linear_memory(q, in.k, in.v, in.gates, from, options);
    return {r.y, {r.state.w, r.state.s}};
  }
  MlpMemoryState from{as_memory_state(initial_state[0], q), as_memory_state(initial_state[1], q), Tensor(), Tensor()};
  if (!start.empty()) from = {start[0], start[1], start[2], start[3]};
  MlpMemoryResult r = mlp_memory(q, in.k, in.v, in.gates, from, options);
  return {r.y, {r.state.w1, r.state.w2, r.state.s1, r.state.s2}};
}

Tensor NeuralMemory::retrieve(const Tensor& q, const std::vector<Tensor>& state) const {
  // A state's product with q is the decayed readout of linear attention with decay 1: q S per
  // head. The learned start ([H, ...]) is the same for every sequence.
  const std::vector<double> no_decay(static_cast<size_t>(n_heads), 1.0);
  auto weights = [&](size_t i) {
    return state.empty() ? repeat_batch(initial_state[i], q.size(0), q) : cast(state[i], q.dtype());
  };
  if (kind == MemoryKind::linear) return decayed_state_readout(q, weights(0), no_decay);
  return decayed_state_readout(silu(decayed_state_readout(q, weights(0), no_decay)), weights(1), no_decay);
}

Tensor NeuralMemory::decode(const MemoryInputs& in, MemoryCarry& carry) const {
  // The unfinished chunk's earlier tokens, then this call's: chunks count from the chunk start.
  const Tensor jq = append_time(carry.q, in.q), jk = append_time(carry.k, in.k), jv = append_time(carry.v, in.v);
  const Tensor jt = append_time(carry.theta, in.gates.theta), je = append_time(carry.eta, in.gates.eta),
               ja = append_time(carry.alpha, in.gates.alpha);
  const int64_t n = jq.size(1), whole = n / options.chunk * options.chunk;
  auto part = [&](int64_t begin, int64_t end) {
    return run({narrow_time(jq, begin, end), narrow_time(jk, begin, end), narrow_time(jv, begin, end),
                {narrow_time(jt, begin, end), narrow_time(je, begin, end), narrow_time(ja, begin, end)}},
               carry.chunk_start);
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
  return last_rows(y, in.q.size(1));
}

Tensor NeuralMemory::conv_path(const Linear& proj, const ShortConv& conv, const Tensor& x, Tensor* tail) const {
  const Tensor u = proj.forward(x);
  Tensor c;
  if (tail) {
    c = conv.forward(u, *tail);
  } else if (sequence_split()) {
    CommLabel scope(comm_label());
    c = short_conv_sp(u, like_activations(conv.weight, u), Tensor(), sp_group());  // k - 1 rows from rank r - 1
  } else {
    c = conv.forward(u);
  }
  return reshape(silu(c), {x.size(0), x.size(1), n_heads, -1});
}

Tensor NeuralMemory::queries(const Tensor& x, Tensor* tail) const {
  return l2_normalize(conv_path(q_proj, q_conv, x, tail), 1e-6);
}

MemoryInputs NeuralMemory::inputs(const Tensor& x, ConvTails* tails) const {
  return {queries(x, tails ? &tails->q : nullptr),
          l2_normalize(conv_path(k_proj, k_conv, x, tails ? &tails->k : nullptr), 1e-6),
          conv_path(v_proj, v_conv, x, tails ? &tails->v : nullptr),
          {gate_logits(theta_proj, theta_bias, x), gate_logits(eta_proj, eta_bias, x), gate_logits(alpha_proj, alpha_bias, x)}};
}

Tensor NeuralMemory::read(const Tensor& x, MemoryCarry* carry) const {
  const MemoryInputs in = inputs(x, carry ? &carry->tails : nullptr);
  if (carry) return decode(in, *carry);
  if (!sequence_split()) return run(in, {}).first;
  if (kind == MemoryKind::linear && !chain_linear_memory) return run(in, folded_start(in)).first;
  // The chain's receives are tied behind the convs' halos (a scalar of all three), so on every rank
  // their backward sends to rank r - 1 come before the halos' and the messages pair up in order.
  const Tensor after = add(add(sum(in.q), sum(in.k)), sum(in.v));
  // The wavefront's lanes are the sequences; with one sequence, its heads (each head's memory is a
  // chain of its own too).
  const int64_t B = x.size(0), T = x.size(1);
  const bool by_heads = B == 1 && n_heads > 1;
  std::vector<Tensor> parts = chain_wavefront(by_heads ? n_heads : B, after, [&](int64_t begin, int64_t end, Tensor& after) {
    const MemoryInputs part = by_heads ? head_rows(in, begin, end) : batch_rows(in, begin, end);
    auto [y, final_state] = run(part, chain_start(after, part.q, by_heads ? begin : 0, by_heads ? end : -1));
    return chain_end(final_state, y);
  });
  if (!by_heads) return join_batch(parts);
  for (Tensor& p : parts) p = reshape(p, {T, p.size(2), p.size(3)});  // [T, heads, e]: joined on axis 1
  return reshape(concat_all(std::move(parts)), {B, T, n_heads, -1});
}

std::vector<Tensor> NeuralMemory::chain_wavefront(int64_t lanes, Tensor after, const ChainSlice& slice) const {
  const int64_t n = chain_slices() == 0 ? lanes : std::min(chain_slices(), lanes);
  std::vector<Tensor> outputs;
  for (int64_t i = 0; i < n; ++i) {
    outputs.push_back(slice(lanes * i / n, lanes * (i + 1) / n, after));
    after = outputs.back();
  }
  return outputs;
}

std::vector<Tensor> NeuralMemory::chain_start(Tensor& after, const Tensor& q, int64_t first_head, int64_t end_head) const {
  // Every rank runs the same ops (rank 0 adds the learned start, the others add it times 0), so
  // the ranks' graphs, and the order of their backward collectives, are the same. Each receive is
  // tied behind the one before (its anchor), so their backward sends go out in the reverse order,
  // the order in which rank r - 1's sends receive them.
  CommLabel scope(comm_label());
  const bool first = sp_group().rank() == 0;
  const size_t weights = initial_state.size();
  std::vector<Tensor> start;
  for (size_t i = 0; i < 2 * weights; ++i) {  // the weights, then their momenta
    const Tensor& all_heads = initial_state[i % weights];
    const Tensor heads = end_head < 0 ? all_heads : slice_outer(all_heads, first_head, end_head);
    const Tensor learned = as_memory_state(repeat_batch(heads, q.size(0), q), q);
    const Tensor received = chain_receive(sp_group(), after, learned.shape());
    after = received;
    start.push_back(i < weights ? add(received, scale(learned, first ? 1.0 : 0.0)) : received);
  }
  return start;
}

std::vector<Tensor> NeuralMemory::folded_start(const MemoryInputs& in) const {
  // titans.md 6.2: a linear memory's final state is affine in its start, [W; S] -> Phi [W; S] + c
  // (Phi [2d, 2d], c [2d, e] per sequence and head, from this rank's tokens alone). Three runs of
  // the memory op on this rank's tokens read them off: from (0, 0) the final state is c, from
  // (I, 0) it is Phi's W column block plus c, from (0, I) its S column block plus c. One AllGather
  // of every rank's (Phi, c), 4 d^2 + 2 d e numbers per head whatever T, then each rank folds the
  // earlier ranks' in rank order onto the learned start. The backward is the same graph's: the
  // adjoint fold through the matmuls and the AllGather's reduce-scatter.
  CommLabel scope(comm_label());
  const int64_t B = in.q.size(0), H = n_heads, d = head_dim, rank = sp_group().rank();
  const Tensor learned = as_memory_state(repeat_batch(initial_state[0], B, in.q), in.q);
  // I per head [H, d, d]: built once per dtype and device, not on every forward.
  if (!fold_identity_.defined() || fold_identity_.dtype() != learned.dtype() || fold_identity_.device() != learned.device()) {
    std::vector<double> eye(static_cast<size_t>(H * d * d), 0.0);
    for (int64_t i = 0; i < H * d; ++i) eye[static_cast<size_t>(i * d + i % d)] = 1.0;
    fold_identity_ = Tensor::from_vector<double>(eye, {H, d, d}).to(learned.dtype()).to(learned.device());
  }
  const Tensor& one = fold_identity_;
  const Tensor zero = Tensor::zeros({H, d, d}, learned.dtype(), learned.device());
  auto final_from = [&](const Tensor& w, const Tensor& m) {
    return linear_memory(in.q, in.k, in.v, in.gates, {w, m}, options).state;
  };
  const LinearMemoryState c = final_from(zero, zero), from_w = final_from(one, zero), from_s = final_from(zero, one);
  auto minus = [](const Tensor& a, const Tensor& b) { return add(a, scale(b, -1.0)); };
  // This rank's summary as one row per sequence: Phi's four blocks, then c's two.
  const std::vector<Tensor> blocks = {minus(from_w.w, c.w), minus(from_s.w, c.w), minus(from_w.s, c.s),
                                      minus(from_s.s, c.s), c.w, c.s};
  Tensor row;
  for (const Tensor& b : blocks) row = row.defined() ? concat_time(row, reshape(b, {B, -1})) : reshape(b, {B, -1});
  const Tensor all = all_gather_op(sp_group(), row);  // [ranks, B, 6 H d d]
  auto block = [&](int64_t p, int64_t i) {
    const Tensor mine = reshape(slice_outer(all, p, p + 1), {B, 6 * H * d * d});
    return reshape(narrow_time(mine, i * H * d * d, (i + 1) * H * d * d), {B, H, d, d});
  };
  // W' = Phi_WW W + Phi_WS S + c_W, S' = Phi_SW W + Phi_SS S + c_S for each earlier rank p.
  auto step = [&](int64_t p, const Tensor& w, const Tensor& m) {
    return std::pair{add(add(matmul(block(p, 0), w), matmul(block(p, 1), m)), block(p, 4)),
                     add(add(matmul(block(p, 2), w), matmul(block(p, 3), m)), block(p, 5))};
  };
  Tensor w = learned, m = Tensor::zeros(learned.shape(), learned.dtype(), learned.device());
  for (int64_t p = 0; p < rank; ++p) std::tie(w, m) = step(p, w, m);
  // Rank 0 folds nothing, yet the AllGather's backward is a collective every rank must join: its
  // start depends on rank 0's summary with weight 0.
  if (rank == 0 && sp_group().size() > 1) w = add(w, scale(step(0, w, m).first, 0.0));
  return {w, m};
}

Tensor NeuralMemory::chain_end(const std::vector<Tensor>& final_state, Tensor carrier) const {
  CommLabel scope(comm_label());
  return chain_send(sp_group(), final_state, carrier);
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
  return gate(y, reshape(memory.read(x, state ? &state->memory : nullptr), {B, T, D}));
}

Tensor MemoryGatedAttention::gate(const Tensor& y, const Tensor& m) const {
  return attn.o_proj.forward(mul(attn_gate_norm.forward(y), sigmoid(memory_gate_norm.forward(m))));
}

MemoryAsContext::MemoryAsContext(const ModelConfig& c, const TitansOptions& o, Generator& gen)
    : MemoryGatedAttention(c, o, gen), segment(o.segment) {
  attn.attention_options.window_left = -1;  // a segment attends over the whole of itself
}

Tensor MemoryAsContext::forward(const Tensor& x, SegmentCarry* carry) const {
  if (!carry && memory.sequence_split()) return run_chained(x);
  if (!carry) {
    SegmentCarry start;
    return run_segments(x, memory.queries(x), start);
  }
  // Decoding: the unfinished segment's earlier inputs, then this call's. Whole segments move the
  // carry on; the rest runs from a copy and waits for its segment to finish.
  const Tensor joined = append_time(carry->pending, x);
  const int64_t n = joined.size(1), whole = n / segment * segment;
  auto run = [&](int64_t begin, int64_t end, SegmentCarry& from) {
    const Tensor part = narrow_time(joined, begin, end);
    const Tensor q = memory.queries(part, &from.retrieval_tail);
    return run_segments(part, q, from);
  };
  Tensor y;
  if (whole > 0) y = run(0, whole, *carry);
  if (whole < n) {
    SegmentCarry unfinished = *carry;
    y = append_time(y, run(whole, n, unfinished));
  }
  carry->pending = whole < n ? narrow_time(joined, whole, n) : Tensor();
  return last_rows(y, x.size(1));
}

Tensor MemoryAsContext::run_chained(const Tensor& x) const {
  // Segments never straddle ranks (the family's check), so only the segment carry crosses: the
  // memory state and the convs' tails over y, from rank r - 1 (rank 0: the learned start and the
  // causal zero padding). The retrieval queries' conv takes its rows from rank r - 1 by a halo,
  // first: every rank sends to its neighbour in the same order (the halo, then the chain).
  const Tensor q = memory.queries(x);
  const int64_t halo = memory.q_conv.weight.size(1) - 1;
  // The receives behind the halo, as NeuralMemory::read's.
  return join_batch(memory.chain_wavefront(x.size(0), q, [&](int64_t begin, int64_t end, Tensor& after) {
    const Tensor xs = slice_outer(x, begin, end), qs = slice_outer(q, begin, end);
    SegmentCarry carry;
    carry.state = memory.chain_start(after, qs);
    if (halo > 0) {
      CommLabel scope(memory.comm_label());
      const Shape tail{end - begin, halo, x.size(2)};
      for (Tensor* t : {&carry.tails.q, &carry.tails.k, &carry.tails.v}) after = *t = chain_receive(memory.sp_group(), after, tail);
    }
    Tensor out = run_segments(xs, qs, carry);
    std::vector<Tensor> sent = carry.state;
    if (halo > 0) sent.insert(sent.end(), {carry.tails.q, carry.tails.k, carry.tails.v});
    return memory.chain_end(sent, out);
  }));
}

Tensor MemoryAsContext::run_segments(const Tensor& x, const Tensor& q, SegmentCarry& carry) const {
  std::vector<Tensor> out;
  for (int64_t begin = 0; begin < x.size(1); begin += segment) {
    const int64_t end = std::min(begin + segment, x.size(1));
    out.push_back(run_segment(narrow_time(x, begin, end), narrow_time(q, begin, end), carry));
  }
  return concat_all(std::move(out));
}

Tensor MemoryAsContext::run_segment(const Tensor& x, const Tensor& q, SegmentCarry& carry) const {
  const int64_t B = x.size(0), C = x.size(1), D = x.size(2);
  const Tensor h = reshape(memory.retrieve(q, carry.state), {B, C, D});
  const Tensor y = second_of_pairs(attn.local_heads_output(interleave(h, x)));
  auto [m, state] = memory.run(memory.inputs(y, &carry.tails), carry.state);
  carry.state = std::move(state);
  return gate(y, reshape(m, {B, C, D}));
}

TitansBlock::TitansBlock(const ModelConfig& c, const TitansOptions& o, Generator& gen)
    : mlp_norm(add_module<RMSNorm>("mlp_norm", c.d_model, o.norm_eps, c.dtype)),
      mlp(add_module<SwiGLU>("mlp", c.d_model, o.mlp_hidden, gen, c.init_std, c.dtype, residual_std(c))) {
  if (o.variant == TitansVariant::mag || o.variant == TitansVariant::mac) {
    gated_norm = &add_module<RMSNorm>("mixer_norm", c.d_model, o.norm_eps, c.dtype);
    if (o.variant == TitansVariant::mag)
      gated = &add_module<MemoryGatedAttention>("mag", c, o, gen);
    else
      context = &add_module<MemoryAsContext>("mac", c, o, gen);
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
  if (context) h = add(h, context->forward(gated_norm->forward(h), state ? &state->segments : nullptr));
  return mlp.forward(mlp_norm.forward(h), h);
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
  // MAC beyond the memory's read of y: the retrieval (queries from x, M(q) at the segment start),
  // the attention of each segment over 2C rows (the retrieved vectors and the tokens) and o_proj.
  auto mac_extra = [&](int64_t T) {
    const int64_t C = options_.segment, whole = T / C, rest = T % C;
    const double retrieval = flops::linear(1, D, D, Pass::forward) + flops::short_conv(1, 1, D, options_.conv_kernel, Pass::forward) +
                             (options_.memory == MemoryKind::linear
                                  ? H * flops::linear(1, d, d, Pass::forward)
                                  : H * (flops::linear(1, d, options_.memory_hidden, Pass::forward) +
                                         flops::linear(1, options_.memory_hidden, d, Pass::forward)));
    const double segments = static_cast<double>(whole) * flops::attention(1, 2 * C, H, d, d, true, -1, Pass::forward) +
                            (rest > 0 ? flops::attention(1, 2 * rest, H, d, d, true, -1, Pass::forward) : 0.0);
    return retrieval + 2 * 3 * flops::linear(1, D, D, Pass::forward) + segments / static_cast<double>(T) +
           8.0 * options_.persistent * D + flops::linear(1, D, D, Pass::forward);
  };
  const double attention = 4 * flops::linear(1, D, D, Pass::forward) +
                           flops::attention(1, T, H, d, d, true, options_.window.window, Pass::forward) / static_cast<double>(T) +
                           4.0 * options_.persistent * D;  // the persistent keys' scores and values
  double layer = 3 * flops::linear(1, D, F, Pass::forward);
  switch (options_.variant) {
    case TitansVariant::lmm: layer += read + own_output; break;
    case TitansVariant::mal: layer += read + own_output + attention; break;
    case TitansVariant::mag: layer += read + attention; break;
    case TitansVariant::mac: layer += read + mac_extra(T); break;
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
        {"mag", "memory as a gate: sliding-window attention and the memory read gate each other"},
        {"mac", "memory as context: each segment attends over what the memory retrieves for it, then updates the memory"}}},
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
      OptionSpec{"persistent", int64_t{4},
                 "N_p learned key/value pairs per head that every query of the attention sees (mal, mag, mac)"}
          .at_least(0),
      OptionSpec{"segment", int64_t{64},
                 "C (mac): the segment each attention runs over and the memory is updated after; a multiple of `chunk`"}
          .at_least(1),
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
  f.check = [](const ModelConfig& c, int64_t seq_len, int64_t sp) -> std::string {
    const std::string& variant = c.options.get_string("variant");
    if (variant != "lmm" && (c.d_model / c.n_heads) % 2 != 0)
      return "variant = \"" + variant + "\" has attention with RoPE: the head dimension d_model / n_heads must be even";
    const int64_t segment = c.options.get_int("segment"), chunk = c.options.get_int("chunk");
    if (variant == "mac" && segment % chunk != 0)
      return "variant = \"mac\" updates the memory segment by segment, so a memory chunk may not straddle two: segment = " +
             std::to_string(segment) + " is not a multiple of chunk = " + std::to_string(chunk);
    // Under sequence parallelism the memory's chain passes from rank to rank at chunk (MAC:
    // segment) boundaries only.
    const int64_t per_rank = sp > 0 ? seq_len / sp : seq_len, unit = variant == "mac" ? segment : chunk;
    if (sp > 1 && per_rank % unit != 0)
      return std::string(variant == "mac" ? "segment" : "chunk") + " = " + std::to_string(unit) +
             " does not divide the " + std::to_string(per_rank) + " tokens of each sequence-parallel rank (seq_len " +
             std::to_string(seq_len) + " over parallel.sp = " + std::to_string(sp) +
             "): a memory chunk may not straddle two ranks";
    return "";
  };
  f.sequence_parallel = true;  // the memory chained through the ranks; convs and windows: halos
  f.build = [](const ModelConfig& c, Generator& gen) -> std::unique_ptr<LanguageModel> {
    return std::make_unique<Titans>(c, gen);
  };
  return f;
}

}  // namespace eat::models
