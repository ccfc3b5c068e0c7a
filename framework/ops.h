#pragma once
// The differentiable ops. Each one checks its inputs (errors name the op and print the shapes),
// runs a forward kernel, and records a node whose backward runs the matching backward kernel.
// Layout conventions: rows are tokens; attention tensors are [B, T, H, d] (the free reshape of a
// projection's [B, T, H*d] output).
#include <optional>

#include "framework/tensor.h"

namespace eat {

// ---- views (share storage)
Tensor reshape(const Tensor& x, const Shape& shape);           // one dimension may be -1
Tensor slice_outer(const Tensor& x, int64_t begin, int64_t end);  // rows [begin, end) of axis 0

// ---- element type (mixed precision): x converted to dtype; the gradient comes back in x's type.
// Returns x itself, recording nothing, when it already has that type.
Tensor cast(const Tensor& x, DType dtype);

// ---- elementwise (same shapes) and reductions
Tensor add(const Tensor& a, const Tensor& b);
void add_into(const Tensor& a, const Tensor& b);  // a += b in place; not differentiable (gradient sums)
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, double s);
Tensor sum(const Tensor& x);   // all elements -> shape [1]
Tensor mean(const Tensor& x);  // all elements -> shape [1]

// ---- activations
enum class GeluApprox { none, tanh };  // exact erf form, or the tanh approximation (GPT-2)
Tensor silu(const Tensor& x);
Tensor gelu(const Tensor& x, GeluApprox approx = GeluApprox::none);
Tensor sigmoid(const Tensor& x);
Tensor softmax(const Tensor& x);  // over the last dimension

// ---- gated channel-mixer core: act(a) * b, with act = SiLU (SwiGLU) or identity (SGLU)
enum class GateActivation { silu, none };
Tensor glu_gate(const Tensor& a, const Tensor& b, GateActivation act);

// ---- normalisation over the last dimension
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps);  // x / rms(x) * weight
Tensor simple_rms_norm(const Tensor& x, double eps);                 // x / rms(x)
// mul(simple_rms_norm(x, eps), gate) with the same bits, forward and backward, in one pass each
// (gate of x's shape: TransNormerLLM's output gate on its normalised attention).
Tensor simple_rms_norm_gate(const Tensor& x, const Tensor& gate, double eps);
Tensor l2_normalize(const Tensor& x, double eps);                    // x / max(||x||, eps)

// ---- copies: x [..., n] -> [..., times n], `times` copies of the last axis side by side
// (torch's repeat on the last axis); the gradient sums the copies.
Tensor tile_last(const Tensor& x, int64_t times);

// ---- linear maps
// y = x W^T + b for x [..., in], W [out, in], b [out] (optional); with a residual (y's shape),
// residual + x W^T + b: a layer's output projection written onto its residual stream, with the
// bits of add(residual, linear(x, W, b)) and one pass over memory fewer on the CPU.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), const Tensor& residual = Tensor());
// Batched C = op(A) op(B) for A [..., M, K] and B [..., K, N] with identical batch dims, or B
// 2-D and shared by every batch; op transposes the last two dims when the flag is set.
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a = false, bool transpose_b = false);

// ---- embeddings and positions
Tensor embedding(const Tensor& ids, const Tensor& weight);  // ids i32/i64 [...] -> [..., D]
// Rotary embedding on x [B, T, H, d] (d even), rotate-half pairing (i, i + d/2), position of
// token t is (position_offset + t) / chunk: with chunk 1 (the default) the token's position
// (sequence parallelism passes the global offset), with chunk L the index of its L-token chunk
// (RAT's chunk-level RoPE; position_offset still counts tokens).
Tensor rope(const Tensor& x, double theta = 10000.0, int64_t position_offset = 0, int64_t chunk = 1);

// ---- causal depthwise short convolution over time
// x [B, T, C], weight [C, k], bias [C] (optional): y[t, c] = b[c] + sum_i w[c, i] x[t - k + 1 + i, c].
Tensor short_conv(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- loss
// Mean over positions whose target != ignore_index of -log softmax(logits)[target].
// logits [N, V] (or [..., V]), targets i32/i64 with the leading shape. Returns shape [1].
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100);

// ---- softmax attention on q [B, T, H, d], k [B, T, H, d], v [B, T, H, e] -> [B, T, H, e]
enum class AttentionImpl { naive, tiled };
struct AttentionOptions {
  bool causal = true;
  // Sliding window: when >= 0, query t sees keys [t - window_left, t] (window_left + 1 keys, as
  // flash-attn's window_size=(left, 0)); -1 means full causal attention.
  int64_t window_left = -1;
  std::optional<double> scale;    // default 1/sqrt(d)
  // Sequence parallelism (tiled kernel only): k and v may hold more tokens than q, whose token 0
  // sits at key position query_offset (causal masks use these global positions).
  int64_t query_offset = 0;
  // Persistent keys (Titans' persistent memory, attention sinks): the first `prefix` rows of k and
  // v are seen by every query whatever the causal mask and window; the sequence's keys follow
  // them, so k and v hold prefix + (key) tokens and positions (query_offset included) count from
  // the first row after the prefix. Gradients reach the prefix rows of k and v. Both kernels;
  // causal or not.
  int64_t prefix = 0;
  AttentionImpl impl = AttentionImpl::tiled;
};
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options = {});

// ---- decayed causal linear attention (Lightning Attention-2 / TransNormerLLM)
// o_t = sum_{s<=t} lambda_h^(t-s) (q_t . k_s) v_s + lambda_h^(t+1) q_t S0 (no softmax, no scale, no denominator);
// q, k [B, T, H, d], v [B, T, H, e]; decay: one lambda in (0, 1] per head (fixed, no gradient);
// initial_state S0 [B, H, d, e] (optional, zero when undefined) is the state "before token 0".
// Returns {o [B, T, H, e], final_state [B, H, d, e]} with final = sum_s lambda^(T-1-s) k_s^T v_s + lambda^T S0.
enum class LightningImpl { naive, recurrent, chunked };
struct LightningOptions {
  LightningImpl impl = LightningImpl::chunked;
  int64_t block = 64;  // chunk size of the chunked kernel
};
std::pair<Tensor, Tensor> lightning_attention(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<double>& decay,
                                              const Tensor& initial_state = Tensor(), const LightningOptions& options = {});

// The contribution of an incoming state to decayed linear attention: o_t = lambda_h^(t+1) q_t S for
// q [B, T, H, d] and S [B, H, d, e] (the state before token 0). lightning_attention(q, k, v, decay,
// S) equals lightning_attention(q, k, v, decay) plus this; LASP-2 uses it for the inter-rank term.
Tensor decayed_state_readout(const Tensor& q, const Tensor& state, const std::vector<double>& decay);
// The state a segment leaves from a zero start: sum_t lambda_h^(T-1-t) k_t^T v_t [B, H, d, e] for
// k [B, T, H, d], v [B, T, H, e]; equals lightning_attention(q, k, v, decay).second without the
// outputs, so LASP-2 can send it before the local attention runs.
Tensor decayed_state_sum(const Tensor& k, const Tensor& v, const std::vector<double>& decay);

// ---- Taylor linear attention (BASED)
// q, k [B, T, H, f] (f = feature dim, 16 in BASED), v [B, T, H, e]. s_ij = q_i.k_j / sqrt(f),
// A_ij = 1 + s_ij + s_ij^2 / 2 (j <= i); N_i = sum_j A_ij v_j, Z_i = sum_j A_ij.
// normalize: y_i = N_i / (Z_i + eps); else y_i = N_i (the model then applies its per-head RMSNorm).
// State: [B, H, D', e + 1] with D' = 1 + f + f (f + 1) / 2: the numerator state S (D' x e) in
// columns [0, e) and the normaliser state z (D') in column e, both in the symmetric feature packing
// phi(k) = [1, k / f^(1/4), k_a k_b c_ab / sqrt(f)] (a <= b, c_aa = 1/sqrt(2), c_ab = 1 for a < b),
// so phi(q).phi(k) = A. initial_state (optional) is the state before token 0 (prefix sums over
// earlier tokens, e.g. another rank's or a decoding prefix); it enters both N and Z:
// y_i = (phi(q_i) S_in + N_i) / (phi(q_i) z_in + Z_i + eps). Returns {y [B, T, H, e], final state}
// (final = initial + sum_j phi(k_j)^T [v_j, 1]). Gradients flow to q, k, v and the initial state.
// States (in and out) are in q's dtype on the CPU and f32 on CUDA (bf16 inputs included), so
// prefix sums keep f32.
// The forms compute the same function: parallel (quadratic, tiles of `block`), chunked (the
// training kernel, O(T); blocks of `block` tokens), recurrent (token by token; decoding). On CUDA
// only the chunked form runs.
enum class TaylorImpl { parallel, chunked, recurrent };
struct TaylorOptions {
  TaylorImpl impl = TaylorImpl::chunked;
  int64_t block = 64;
  bool normalize = true;
  double eps = 1e-12;
};
int64_t taylor_state_rows(int64_t feature_dim);  // D'
std::pair<Tensor, Tensor> taylor_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                           const Tensor& initial_state = Tensor(), const TaylorOptions& options = {});
// The state a segment leaves from a zero start: sum_t phi(k_t)^T [v_t, 1] [B, H, D', e + 1] for
// k [B, T, H, f], v [B, T, H, e] (f32 on CUDA); equals taylor_attention(q, k, v).second (any q)
// without the outputs, so sequence parallelism can send it before the local attention runs.
// Gradients flow to k (through the feature map) and v.
Tensor taylor_state_sum(const Tensor& k, const Tensor& v);
// taylor_attention split at its incoming state, so that sequence parallelism runs the local pass
// while the state gather is in flight (framework/parallel/taylor_sp.h):
// taylor_attention_sums is the pass from a zero state, returning the unnormalised [N | Z]
// [B, T, H, e + 1] (f32 on CUDA; the chunked kernel whatever options.impl, in blocks of
// options.block on the CPU); taylor_state_readout adds phi(q) [S | z] of a state [B, H, D', e + 1]
// and divides by Z + eps exactly as taylor_attention does (y = N without the denominator), so
//     taylor_state_readout(q, s0, taylor_attention_sums(q, k, v, o), o)
// is taylor_attention(q, k, v, s0, o).first up to the summation order. Gradients reach q, k, v,
// the state and the sums.
Tensor taylor_attention_sums(const Tensor& q, const Tensor& k, const Tensor& v, const TaylorOptions& options = {});
Tensor taylor_state_readout(const Tensor& q, const Tensor& state, const Tensor& sums, const TaylorOptions& options = {});


// ---- RAT (Wei et al., CLAIRE-Labo/RAT): recurrence inside chunks, attention across them
// The chunk-reset gated scan: for x, gate_logit [B, T, C] (C channels), g = sigmoid(gate_logit)
// (in f32 at least, inside the kernel) and
//     h_t = g_t * h_{t-1} + (1 - g_t) * x_t,   h_{t-1} = 0 where token t starts a chunk,
// token t starting a chunk when (phase + t) % chunk == 0 (phase: tokens of the current chunk seen
// before token 0, decoding; 0 in training). initial [B, C] (optional, zero when undefined) is
// h_{-1}, read only when token 0 continues a chunk (phase % chunk != 0). Returns h [B, T, C] in
// x's dtype (accumulated in f32 on CUDA, bf16 included). Gradients flow to x, gate_logit and initial.
Tensor chunk_scan(const Tensor& x, const Tensor& gate_logit, int64_t chunk, const Tensor& initial = Tensor(),
                  int64_t phase = 0);

// Softmax attention over chunk summaries with one private key per query (RAT's inter-chunk
// attention merged with its own-token term). q, k [B, T, H, d], v [B, T, H, e]: each query's own
// key and value (its chunk's running state); k_sum [B, C, H, d], v_sum [B, C, H, e]: the summaries
// of chunks 0 .. C-1 (C may be 0). Query t, at global position p = query_offset + t in chunk
// c = p / chunk, attends with one softmax to the summaries j < min(c, C) and to its own key:
//     y_t = softmax([scale q_t.k_sum_j (j < c), scale q_t.k_t]) . [v_sum_j (j < c), v_t]
// (chunk 0's queries see only their own key: y_t = v_t). scale defaults to 1/sqrt(d). Statistics
// in f32 at least. Gradients flow to all five inputs.
struct SummaryAttentionOptions {
  int64_t chunk = 16;
  int64_t query_offset = 0;  // sequence parallelism: rank * T; decoding: the tokens seen before
  std::optional<double> scale;
};
Tensor summary_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& k_sum, const Tensor& v_sum,
                         const SummaryAttentionOptions& options = {});

// ---- MoH (Jin et al., "MoH: Multi-Head Attention as Mixture-of-Head Attention", arXiv 2410.11842)
// The two-stage router's gates per token (N tokens as rows, or any leading shape such as [B, T]),
// from its three logit sets, the router projections of each token's attention input (linear
// ops): shared_logits [N, h_s], routed_logits [N, R] (1 <= R <= 64, 1 <= top_k <= R) and
// mix_logits [N, 2]. With p = softmax(routed_logits), sel the top_k
// entries of p (ties to the lower index) and a = 2 softmax(mix_logits), as the reference code:
//   g_i       = a_0 h_s softmax(shared_logits)_i                  for the h_s shared heads,
//   g_{h_s+i} = a_1 top_k p_i / sum_{j in sel} p_j  (i in sel), 0 otherwise, for the R routed heads,
// so that the mean gate is 1. With h_s = 0 the routed gates stand alone (no a_1 factor;
// shared_logits and mix_logits undefined). Softmaxes, top-k and renormalisation in f32 at least.
// Returns gates [N, h_s + R], routed_probs p [N, R] (for the load-balance loss) and selected
// [N, R] (1 where selected, else 0), all in routed_logits' dtype. Gradients flow from gates and
// routed_probs to the three logit sets; none through the selection (as in MoE routers).
struct MohGates {
  Tensor gates, routed_probs, selected;
};
MohGates moh_gates(const Tensor& shared_logits, const Tensor& routed_logits, const Tensor& mix_logits, int64_t top_k);

// Softmax attention whose (query token, head) pairs are weighted by gates [B, T, H] (MoH's gated
// heads): y[b, t, h] = gates[b, t, h] * attention(q, k, v, options)[b, t, h]. A pair whose gate is
// exactly 0 is not computed, forward or backward (its key and value still serve every other
// query). Options as attention's (causal, window, scale, query_offset with longer keys; no
// persistent keys: prefix must be 0); tiled kernels only. Gradients flow to q, k, v and gates:
// dgates = <dy, the attention output> where the gate is non-zero and 0 where it is 0 (that output
// was never computed; MoH's router passes no gradient through an unselected head's gate, which is
// 0 by selection).
Tensor gated_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& gates,
                       const AttentionOptions& options = {});


// ---- Titans neural long-term memory (Behrouz et al., arXiv 2501.00663; ../specs titans.md 1-3)
// Per head, a memory M learned at test time: for each token, with u_t the gradient of the inner
// loss ||M(k_t) - v_t||^2 (the sum over the e outputs) with respect to M's weights,
//     S_t = eta_t S_{t-1} - theta_t u_t            (momentum, the "surprise")
//     M_t = (1 - alpha_t) M_{t-1} + S_t            (forgetting)
//     y_t = M_t(q_t)                               (read after token t's update)
// where every gradient of a chunk of `chunk` tokens (b) is taken at the chunk-start state (the
// paper's mini-batch form; chunk 1 is the exact online rule; chunks are counted from token 0 and
// the last one may be shorter). Gates per token and head, from logits [B, T, H]:
//     theta = max_lr * sigmoid(theta_logit), eta = sigmoid(eta_logit), alpha = sigmoid(alpha_logit),
// so log(eta) = -softplus(-eta_logit) and log(1 - alpha) = -softplus(alpha_logit) are formed in log
// space and every product of gates over a segment is exp of a segment sum <= 0.
// q, k [B, T, H, d], v [B, T, H, e]. States are [B, H, ...] (or the initial weights [H, ...], shared
// by every sequence of the batch, their gradient summed over it); an undefined momentum starts at
// 0. States in and out are in q's dtype on the CPU and f32 on CUDA (bf16 inputs included); the
// inner math (gates, segment products, states) runs in f32 at least. Gradients flow to q, k, v,
// the three logit sets and the initial states.
// The backward keeps only the state at every `checkpoint_chunks`-th chunk boundary from the forward
// (0: about sqrt(chunks)) and recomputes the others, so saved memory is not T/b states.
struct MemoryGateLogits {
  Tensor theta, eta, alpha;  // [B, T, H] each
};
struct NeuralMemoryOptions {
  int64_t chunk = 16;       // b
  double max_lr = 0.1;      // theta's upper bound
  int64_t checkpoint_chunks = 0;
};
// Linear memory M(k) = k W, W [d, e]: the chunked dual form (titans.md 2.2, backward 3.1).
// State {W, S}, each [B, H, d, e]; initial W and S each [B, H, d, e] or [H, d, e] (undefined: 0).
struct LinearMemoryState {
  Tensor w, s;
};
struct LinearMemoryResult {
  Tensor y;                 // [B, T, H, e]
  LinearMemoryState state;  // after the last token
};
LinearMemoryResult linear_memory(const Tensor& q, const Tensor& k, const Tensor& v, const MemoryGateLogits& gates,
                                 const LinearMemoryState& initial = {}, const NeuralMemoryOptions& options = {});

// Two-layer MLP memory M(k) = silu(k W1) W2, W1 [d, h], W2 [h, e] (h = the hidden width): the
// chunked dual form (titans.md 2.3, backward 3.2 with silu''). State {W1, W2, S1, S2}; initial W1
// and W2 are required ([B, H, ...] or [H, ...]: a zero memory never learns), S1 and S2 optional.
struct MlpMemoryState {
  Tensor w1, w2, s1, s2;  // [B, H, d, h], [B, H, h, e], momenta alike
};
struct MlpMemoryResult {
  Tensor y;              // [B, T, H, e]
  MlpMemoryState state;  // after the last token
};
MlpMemoryResult mlp_memory(const Tensor& q, const Tensor& k, const Tensor& v, const MemoryGateLogits& gates,
                           const MlpMemoryState& initial, const NeuralMemoryOptions& options = {});

}  // namespace eat
