#pragma once
// Titans (Behrouz, Zhong, Mirrokni, "Titans: Learning to Memorize at Test Time", arXiv
// 2501.00663): a neural long-term memory learned at test time, per head, by gradient descent with
// momentum and forgetting on ||M(k_t) - v_t||^2 (framework/ops.h linear_memory, mlp_memory), read
// with y_t = M_t(q_t). Pre-norm blocks with a SwiGLU MLP in each, a final RMSNorm and an output
// head. The variant (recipe key `variant`) sets the block's mixer:
//   lmm: the memory layer alone (the paper's "Titans (LMM)");
//   mal: memory as a layer: the memory layer, then sliding-window attention, each a residual
//        sublayer of the block (eq 29-31);
//   mag: memory as a gate: sliding-window attention and the memory read in parallel on the same
//        input, o = o_proj(RMSNorm_a(y) * sigmoid(RMSNorm_b(m))) (eq 26-28, the spec's reading of
//        "normalise with learnable vector-valued weights, then a non-linearity");
//   mac: memory as context: segments of `segment` tokens, each attending over what the memory
//        retrieves for it, then updating the memory from the attention's output (eq 21-25; see
//        MemoryAsContext for the order and the causality that the paper leaves implicit).
// The attention of mal, mag and mac sees `persistent` learned key/value pairs per head before the
// window (the persistent memory of eq 19, held as lucidrains holds it: inside the attention, so
// the memory stores content only). Under sequence parallelism an MLP memory's state (and MAC's
// carry) passes through the ranks in series (NeuralMemory::chain_start / chain_end), a linear
// memory's start comes from every rank's affine summary folded in rank order (folded_start); the
// convs and the window use halos.
#include <functional>
#include <vector>

#include "framework/model.h"
#include "framework/nn/layers.h"
#include "framework/nn/sequence_mixer.h"
#include "framework/ops.h"
#include "models/block_stack.h"
#include "models/transformer.h"

namespace eat::models {

enum class TitansVariant { lmm, mal, mag, mac };
enum class MemoryKind { linear, mlp };

struct TitansOptions {
  TitansVariant variant;
  MemoryKind memory;
  int64_t memory_hidden;  // the MLP memory's hidden width h
  NeuralMemoryOptions memory_options;
  int64_t conv_kernel;    // the depthwise causal convs on q, k, v
  int64_t persistent;     // N_p persistent key/value pairs per head (mal, mag, mac)
  int64_t segment;        // C: MAC's segment length (a multiple of the memory's chunk)
  int64_t mlp_hidden;     // SwiGLU hidden width
  double norm_eps;
  bool tie_embeddings;
  TransformerOptions window;  // the sliding-window attention (window, RoPE)
  static TitansOptions from(const ModelConfig& config);
};

// The last k - 1 inputs of the memory's q, k and v convs (undefined: the sequence start).
struct ConvTails {
  Tensor q, k, v;
};

// What decoding carries for a memory layer between calls: the memory state at the last chunk
// boundary (the gradients of a chunk are taken there, so the tokens of an unfinished chunk are
// kept and re-run from it: at most chunk - 1 of them), and the last k - 1 inputs of each conv.
struct MemoryCarry {
  std::vector<Tensor> chunk_start;           // {W, S} or {W1, W2, S1, S2}; empty: the learned start
  Tensor q, k, v, theta, eta, alpha;         // the current chunk's tokens so far
  ConvTails tails;
  int64_t bytes() const;
};

// What MAC carries from one segment to the next (in training, between the segments of a
// sequence; in decoding, between calls): the memory state at the segment start, the conv tails of
// the memory's inputs (the attention outputs y) and of the retrieval queries' conv (the block
// input x), and in decoding the unfinished segment's inputs, re-run from the segment start.
struct SegmentCarry {
  std::vector<Tensor> state;  // empty: the learned start
  ConvTails tails;
  Tensor retrieval_tail;
  Tensor pending;             // decoding: the normed inputs of the unfinished segment
  int64_t bytes() const;
};

struct TitansLayerState {
  MemoryCarry memory;
  WindowCache window;
  SegmentCarry segments;
  int64_t bytes() const { return memory.bytes() + window.bytes() + segments.bytes(); }
};

// The memory's inputs for a stretch of tokens.
struct MemoryInputs {
  Tensor q, k, v;  // [B, T, H, d]
  MemoryGateLogits gates;
};

// The LMM mixer (titans.md section 1, Gated DeltaNet's layout): q, k, v = SiLU(depthwise causal
// conv(x W)), q and k L2-normalised per head, gate logits x W + b per head (theta, eta, alpha), the
// memory read y [B, T, H, e] (e = d = D / H); with its own output (lmm, mal) then
// o_proj(RMSNorm_head(y) * SiLU(x W_g)). The memory's initial weights are learned, one set per
// head, shared by every sequence; the momentum starts at zero.
class NeuralMemory : public SequenceMixer {
 public:
  NeuralMemory(const ModelConfig& c, const TitansOptions& o, bool own_output, Generator& gen);
  // x [B, T, D] (normed) -> the memory read [B, T, H, e]; carry (decoding): the call continues it.
  Tensor read(const Tensor& x, MemoryCarry* carry = nullptr) const;
  // read, then the output gate and projection -> [B, T, D] (own_output only).
  Tensor forward(const Tensor& x, MemoryCarry* carry = nullptr) const;

  // q, k, v and the gate logits of x's tokens; tails (optional) continue the convs and are updated.
  MemoryInputs inputs(const Tensor& x, ConvTails* tails = nullptr) const;
  // The retrieval queries of x [B, T, D]: SiLU(conv(x W_q)), L2-normalised per head, [B, T, H, d].
  Tensor queries(const Tensor& x, Tensor* tail = nullptr) const;
  // The memory op on `in` from `start` ({}: the learned initial state): y and the final state.
  std::pair<Tensor, std::vector<Tensor>> run(const MemoryInputs& in, const std::vector<Tensor>& start) const;
  // M(q) with the weights of `state` held fixed (no update): [B, T, H, e].
  Tensor retrieve(const Tensor& q, const std::vector<Tensor>& state) const;
  // Sequence parallelism (titans.md 6.1): the memory is one chain over the ranks in series. The
  // state this rank starts from ({W, S} or {W1, W2, S1, S2}, [B, H, ...]): rank r - 1's final
  // state, rank 0's the learned start with zero momentum; q gives B, dtype and device. The
  // receives are tied behind `after` (a tensor whose producers exchange halos with the same
  // neighbours), which then holds the last received tensor, for receives that follow.
  // [first_head, end_head): the state of those heads only (end_head -1: every head).
  std::vector<Tensor> chain_start(Tensor& after, const Tensor& q, int64_t first_head = 0, int64_t end_head = -1) const;
  // Sends this rank's final state on to rank r + 1; returns carrier (the layer's output, through
  // which the state's gradient comes back).
  Tensor chain_end(const std::vector<Tensor>& final_state, Tensor carrier) const;
  // The chain as a wavefront (titans.md 6.1) over independent lanes (the batch's sequences, or
  // one sequence's heads): the lanes in chain_slices() slices, each one's state received, run and
  // sent on by `slice(begin, end, after)` before the next slice starts, so rank r + 1 works on a
  // slice while rank r works on the next. `after` is chain_start's, and each slice's receives are
  // tied behind the output of the slice before: the backward, on every rank, takes the slices
  // last to first, each whole (its state's adjoint received, its op, its start's adjoint sent
  // back) before the next, which keeps the ranks' messages in one order and the backward a
  // wavefront too. -> the slices' outputs in order.
  using ChainSlice = std::function<Tensor(int64_t begin, int64_t end, Tensor& after)>;
  std::vector<Tensor> chain_wavefront(int64_t lanes, Tensor after, const ChainSlice& slice) const;
  // A linear memory's start under sequence parallelism without the chain (titans.md 6.2): every
  // rank's affine summary gathered at once and folded in rank order, {W, S} [B, H, d, d].
  std::vector<Tensor> folded_start(const MemoryInputs& in) const;
  // Tests: a linear memory takes the serial chain under sequence parallelism, as an MLP memory
  // must, instead of the fold.
  bool chain_linear_memory = false;

  Linear &q_proj, &k_proj, &v_proj;
  ShortConv &q_conv, &k_conv, &v_conv;
  Linear &theta_proj, &eta_proj, &alpha_proj;
  Tensor theta_bias, eta_bias, alpha_bias;
  std::vector<Tensor> initial_state;  // {W [H, d, e]} or {W1 [H, d, h], W2 [H, h, e]}
  RMSNorm* head_norm = nullptr;       // own output only
  Linear* gate_proj = nullptr;
  Linear* o_proj = nullptr;
  int64_t n_heads, head_dim;
  MemoryKind kind;
  NeuralMemoryOptions options;

 private:
  Tensor decode(const MemoryInputs& in, MemoryCarry& carry) const;
  // SiLU(conv(x W)) as [B, T, H, d]: tail (optional) continues the conv; under sequence
  // parallelism without a tail, the conv's k - 1 rows before this rank's come from rank r - 1.
  Tensor conv_path(const Linear& proj, const ShortConv& conv, const Tensor& x, Tensor* tail) const;
  mutable Tensor fold_identity_;  // folded_start's identity, kept while the dtype and device stay
};

// Sliding-window attention with RoPE whose queries also see `persistent` learned key/value pairs
// per head, in front of the window and without positions (attention's prefix).
class PersistentAttention : public CausalSelfAttention {
 public:
  PersistentAttention(const ModelConfig& c, const TitansOptions& o, Generator& gen);
  Tensor attend_heads(const Tensor& x, const Tensor& q, const Tensor& keys, const Tensor& values,
                      const AttentionOptions& options) const override;

  Tensor persistent_keys, persistent_values;  // [N_p, D] (undefined when N_p = 0)
  int64_t persistent;
};

// MAG's mixer: the attention's heads and the memory read gate each other, then the attention's
// o_proj.
class MemoryGatedAttention : public Module {
 public:
  MemoryGatedAttention(const ModelConfig& c, const TitansOptions& o, Generator& gen);
  Tensor forward(const Tensor& x, TitansLayerState* state, int64_t position) const;
  // o_proj(RMSNorm_a(y) * sigmoid(RMSNorm_b(m))) for the heads' outputs y and the read m, [B, T, D].
  Tensor gate(const Tensor& y, const Tensor& m) const;

  PersistentAttention& attn;
  NeuralMemory& memory;
  RMSNorm &attn_gate_norm, &memory_gate_norm;
};

// MAC's mixer (titans.md 4.2), per segment S of C tokens of the normed input x, with M the memory
// state at the segment start:
//   1. retrieve h_i = M(q_i) for each token of S, q_i from x as the memory's queries;
//   2. attend causally over [persistent | h | S]: query i sees the persistent pairs, h_j and x_j
//      for j <= i (the retrieved vectors are one per token, each from its own token's query, so a
//      later one would leak the future). The segment runs as one sequence h_1 x_1 h_2 x_2 ...
//      (RoPE positions 0..2C-1) under the ordinary causal mask, and the outputs y at the x rows
//      are kept (the h rows' outputs are computed and dropped: twice the attention's work);
//   3. update the memory from y over the segment (its k, v, gates from y; the op takes the inner
//      gradient with k and v held fixed, as the update rule is defined, not through h);
//   4. read m_i = M_i(q(y_i)) with the per-token state of the op (after token i's update, never
//      the segment end's) and gate: o = o_proj(RMSNorm_a(y) * sigmoid(RMSNorm_b(m))), as MAG.
// h enters the attention as read (no norm: a linear memory starts at W = 0, where a norm's
// gradient is 1/sqrt(eps)). The attention is full inside a segment (the recipe's window does not
// apply).
class MemoryAsContext : public MemoryGatedAttention {
 public:
  MemoryAsContext(const ModelConfig& c, const TitansOptions& o, Generator& gen);
  // x [B, T, D] -> [B, T, D]; carry (decoding) continues a sequence.
  Tensor forward(const Tensor& x, SegmentCarry* carry = nullptr) const;

  int64_t segment;

 private:
  // x's segments in order from `carry`, which ends at the state after them; q: x's retrieval
  // queries (they depend on x alone: one pass over all the segments).
  Tensor run_segments(const Tensor& x, const Tensor& q, SegmentCarry& carry) const;
  // Under sequence parallelism: this rank's segments, the carry chained through the ranks.
  Tensor run_chained(const Tensor& x) const;
  Tensor run_segment(const Tensor& x, const Tensor& q, SegmentCarry& carry) const;
};

class TitansBlock : public Module {
 public:
  TitansBlock(const ModelConfig& c, const TitansOptions& o, Generator& gen);
  Tensor forward(const Tensor& x, TitansLayerState* state = nullptr, int64_t position = 0) const;

  // lmm and mal: the memory sublayer; mal: then the attention sublayer; mag: the gated pair;
  // mac: the segments.
  RMSNorm* memory_norm = nullptr;
  NeuralMemory* memory = nullptr;
  RMSNorm* window_norm = nullptr;
  PersistentAttention* window = nullptr;
  RMSNorm* gated_norm = nullptr;
  MemoryGatedAttention* gated = nullptr;
  MemoryAsContext* context = nullptr;
  RMSNorm& mlp_norm;
  SwiGLU& mlp;
};

class Titans : public BlockStack<TitansBlock, TitansLayerState> {
 public:
  Titans(const ModelConfig& c, Generator& gen);
  double train_flops_per_token(int64_t seq_len) const override;
  const TitansOptions& options() const { return options_; }

 private:
  ModelConfig config_;
  TitansOptions options_;
};
using TitansDecodeState = Titans::DecodeState;

FamilySpec titans_family();

}  // namespace eat::models
