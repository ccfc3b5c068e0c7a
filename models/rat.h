#pragma once
// RAT (Wei et al., "RAT: Bridging RNN Efficiency and Attention Accuracy", arXiv 2507.04416, as
// released in CLAIRE-Labo/RAT): recurrence inside chunks of L tokens, softmax attention across
// them. Blocks are
//   h = x + out_proj(z * Attn(...)) on RMSNorm(x);  x' = h + fc2(gelu(fc1(RMSNorm(h))))
// with a final RMSNorm and the output head tied to the token embedding. The RAT layer projects
// the normed input to an output gate z = sigmoid(.), a per-channel forget gate g = sigmoid(. +
// gate_bias), values v (D wide) and low-rank q, k (ngroups heads of d, shared by the H heads:
// head h reads group h % ngroups). A gated scan that restarts at every chunk start turns k and v
// into running states k~, v~ (one gate for both); q and k~ are rotated by chunk-level RoPE (the
// position is the chunk index); each token attends with one softmax to the last k~, v~ of every
// earlier chunk (the chunk summaries) and to its own k~, v~.
// The RAT-SWA hybrid: the layers in `window_layers` are sliding-window softmax attention with token
// RoPE instead (no output gate), e.g. every second layer as in the reference hybrid.
#include <vector>

#include "framework/model.h"
#include "framework/nn/layers.h"
#include "framework/nn/sequence_mixer.h"
#include "framework/ops.h"
#include "models/block_stack.h"
#include "models/transformer.h"

namespace eat::models {

struct RatOptions {
  int64_t mlp_hidden;  // GELU MLP hidden width
  double norm_eps;
  bool tie_embeddings;
  int64_t chunk;    // L
  int64_t ngroups;  // q/k groups shared by the heads
  double rope_theta;
  std::vector<bool> window_layer;  // per layer: sliding-window attention instead of RAT
  TransformerOptions window;       // the sliding-window layers are the Transformer's attention with a window
  static RatOptions from(const ModelConfig& config);
};

// What decoding carries per layer between calls (Rat::forward_with_state, block_stack.h): for a
// RAT layer, the running k~, v~ of the current chunk ([B, D], before RoPE) and the summaries of
// every finished chunk ([B, C, H, d], k after RoPE), so memory grows as T / L; for a window layer,
// its keys and values.
struct RatLayerState {
  Tensor key_run, value_run;
  Tensor key_summaries, value_summaries;
  WindowCache window;
  int64_t bytes() const { return defined_bytes({key_run, value_run, key_summaries, value_summaries}) + window.bytes(); }
};

class RatLayer : public SequenceMixer {
 public:
  RatLayer(const ModelConfig& c, const RatOptions& o, Generator& gen);
  // x [B, T, D] (normed) -> [B, T, D] (before the residual). Under sequence parallelism each
  // rank's share must be a whole number of chunks; the summaries of every rank's chunks are
  // all-gathered (2 D numbers per chunk). With state (decoding) the call continues the sequence
  // `position` tokens in.
  Tensor forward(const Tensor& x, RatLayerState* state = nullptr, int64_t position = 0) const;

  // in_proj of the reference, held as its five column blocks (the same map): z, v, g (with
  // gate_bias), q and k (ngroups x d each).
  Linear &z_proj, &v_proj, &g_proj, &q_proj, &k_proj;
  Tensor gate_bias;
  Linear& out_proj;
  int64_t n_heads, head_dim, ngroups, chunk;
  double rope_theta;
};

class RatBlock : public Module {
 public:
  RatBlock(const ModelConfig& c, const RatOptions& o, int64_t layer, Generator& gen);
  Tensor forward(const Tensor& x, RatLayerState* state = nullptr, int64_t position = 0) const;

  RMSNorm& mixer_norm;
  // The one mixer this layer has; its module name says which: layers.<i>.rat or layers.<i>.window.
  RatLayer* rat = nullptr;
  CausalSelfAttention* window = nullptr;
  RMSNorm& mlp_norm;
  GeluMLP& mlp;
};

class Rat : public BlockStack<RatBlock, RatLayerState> {
 public:
  Rat(const ModelConfig& c, Generator& gen);
  double train_flops_per_token(int64_t seq_len) const override;
  const RatOptions& options() const { return options_; }

 private:
  ModelConfig config_;
  RatOptions options_;
};
using RatDecodeState = Rat::DecodeState;

FamilySpec rat_family();

}  // namespace eat::models
