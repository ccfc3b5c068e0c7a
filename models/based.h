#pragma once
// BASED (Arora et al., arXiv 2402.18668, as released in HazyResearch/based): a GPT-style pre-norm
// stack whose blocks are
//   h = x + Mixer(RMSNorm(x));  x' = h + SwiGLU(RMSNorm(h))
// with a SwiGLU MLP in every block, a final RMSNorm and the output head tied to the token
// embedding (by default). The mixer of each layer is one of three, chosen by two recipe lists:
//   - layers in `taylor_layers`: Taylor linear attention (phi(q).phi(k) = 1 + s + s^2/2 with
//     s = q.k / sqrt(feature_dim), with a denominator, or without one and a per-head RMSNorm);
//   - layers in `window_layers`: sliding-window softmax attention with RoPE on the full head;
//   - every other layer: BaseConv, a gated causal depthwise convolution (kernel 3).
// Reference config based-360m: Taylor at {1, 6, 11, 16, 21}, windows at {2, 7, 12, 17, 22} of 27.
#include <vector>

#include "framework/model.h"
#include "framework/nn/layers.h"
#include "framework/nn/sequence_mixer.h"
#include "framework/ops.h"
#include "models/block_stack.h"
#include "models/transformer.h"

namespace eat::models {

enum class BasedMixer { base_conv, taylor, window };

struct BasedOptions {
  int64_t mlp_hidden;  // SwiGLU hidden width
  double norm_eps;
  bool tie_embeddings;
  std::vector<BasedMixer> schedule;  // one mixer per layer, from taylor_layers and window_layers
  int64_t feature_dim;               // Taylor q/k width per head
  TaylorOptions taylor;
  int64_t conv_kernel;
  TransformerOptions window;  // the sliding-window layers are the Transformer's attention with a window
  static BasedOptions from(const ModelConfig& config);
};

// The mixer of every layer: Taylor where taylor_layers says, sliding window where window_layers
// says, BaseConv elsewhere (the lists are checked by the family: in range and disjoint).
std::vector<BasedMixer> based_schedule(int64_t n_layers, const IntList& taylor_layers, const IntList& window_layers);

// What decoding carries per layer between calls (Based::forward_with_state, block_stack.h): the
// Taylor layer's [B, H, D', e + 1] state, the window layer's last `window` keys and values (RoPE
// applied), the BaseConv layer's last k - 1 conv inputs.
struct BasedLayerState {
  Tensor taylor;
  WindowCache window;
  Tensor conv_tail;
  int64_t bytes() const { return defined_bytes({taylor, conv_tail}) + window.bytes(); }
};

// BaseConv (the spec's section 4, the LM configs' form): [u1; u2] = x W_in + b_in (D -> 4D), c =
// causal depthwise conv of u1 (kernel k, no bias), y = (silu(c) * u2) W_out + b_out (2D -> D).
// W_in is held as its two halves, u1's (`conv_proj`) and u2's (`gate_proj`): the same map.
class BaseConv : public SequenceMixer {
 public:
  BaseConv(const ModelConfig& c, const BasedOptions& o, Generator& gen);
  // x [B, T, D] -> [B, T, D]. With state (decoding), the conv sees state->conv_tail's rows before x
  // and leaves x's last k - 1 conv inputs there.
  Tensor forward(const Tensor& x, BasedLayerState* state = nullptr) const;

  Linear &conv_proj, &gate_proj;
  ShortConv& conv;
  Linear& out_proj;
};

// Taylor linear attention (the spec's section 2): q, k projected straight to H x feature_dim, v to
// H x e (e = D / H), no positional encoding, out_proj. normalize = false drops the denominator and
// applies an RMSNorm over each head's e outputs (one weight vector shared by the heads).
class TaylorAttention : public SequenceMixer {
 public:
  TaylorAttention(const ModelConfig& c, const BasedOptions& o, Generator& gen);
  // x [B, T, D] -> [B, T, D]. state (decoding): the [B, H, D', e + 1] state before x (undefined:
  // zero), replaced by the state after x. Under sequence parallelism the incoming state is the sum
  // of the earlier ranks' local states (one AllGather of T-independent states, in flight during
  // the local pass: framework/parallel/taylor_sp.h).
  Tensor forward(const Tensor& x, BasedLayerState* state = nullptr) const;

  Linear &q_proj, &k_proj, &v_proj, &out_proj;
  RMSNorm* head_norm = nullptr;  // without the denominator only
  int64_t n_heads, feature_dim, head_dim;
  TaylorOptions options;

 private:
  JoinedLinear qkv_;  // q_proj, k_proj and v_proj as one GEMM
};

class BasedBlock : public Module {
 public:
  BasedBlock(const ModelConfig& c, const BasedOptions& o, int64_t layer, Generator& gen);
  Tensor forward(const Tensor& x, BasedLayerState* state = nullptr, int64_t position = 0) const;

  BasedMixer kind;
  RMSNorm& mixer_norm;
  // The one mixer this layer has (the others stay null); its module name says which:
  // layers.<i>.conv, layers.<i>.taylor or layers.<i>.window.
  BaseConv* conv = nullptr;
  TaylorAttention* taylor = nullptr;
  CausalSelfAttention* window = nullptr;
  RMSNorm& mlp_norm;
  SwiGLU& mlp;
};

class Based : public BlockStack<BasedBlock, BasedLayerState> {
 public:
  Based(const ModelConfig& c, Generator& gen);
  double train_flops_per_token(int64_t seq_len) const override;
  const BasedOptions& options() const { return options_; }

 private:
  ModelConfig config_;
  BasedOptions options_;
};
using BasedDecodeState = Based::DecodeState;

FamilySpec based_family();

}  // namespace eat::models
