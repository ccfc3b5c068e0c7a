#pragma once
// The baseline: a Llama-style causal Transformer. Pre-norm blocks of RMSNorm -> multi-head
// softmax attention with RoPE (the tiled kernel) -> residual, RMSNorm -> SwiGLU -> residual; a
// final RMSNorm and an output head, optionally tied to the token embedding.
#include <functional>
#include <memory>

#include "framework/model.h"
#include "framework/nn/layers.h"
#include "framework/nn/sequence_mixer.h"
#include "framework/parallel/lasp2.h"
#include "framework/ops.h"
#include "models/block_stack.h"

namespace eat::models {

struct TransformerOptions {
  int64_t mlp_hidden;      // SwiGLU hidden width
  double rope_theta;
  double norm_eps;
  bool tie_embeddings;
  int64_t window;          // sliding-window attention when >= 0 (query sees window + 1 keys)
  AttentionImpl attention_impl;
  static TransformerOptions from(const ModelConfig& config);
  // The sliding-window attention layers of a hybrid family: that family's MLP width, norm epsilon
  // and embedding tie, its recipe keys `rope_theta` and `window`, the tiled kernel.
  static TransformerOptions for_window(const ModelConfig& config, int64_t mlp_hidden, double norm_eps,
                                       bool tie_embeddings);
};

// What decoding keeps of an attention layer between calls: the keys (RoPE applied) and values of
// the tokens seen, the last `window` of them for a sliding window.
struct WindowCache {
  Tensor keys, values;
  int64_t bytes() const { return defined_bytes({keys, values}); }
};

class CausalSelfAttention : public SequenceMixer {
 public:
  CausalSelfAttention(const ModelConfig& c, const TransformerOptions& o, Generator& gen);
  // x [B, T, D] -> [B, T, D]; position_offset is the global position of token 0. With a residual
  // ([B, T, D]) the output projection writes onto it: residual + attention(x).
  Tensor forward(const Tensor& x, int64_t position_offset = 0, const Tensor& residual = Tensor()) const;
  // Decoding: x's tokens (at positions from `position` on) attend to the cached keys and values
  // and their own; the cache then keeps what the next call needs. Whole sequences only.
  Tensor forward_cached(const Tensor& x, WindowCache& cache, int64_t position) const;
  // The same two before o_proj: the heads' outputs side by side, [B, T, D] (Titans' MAG gates
  // them with its memory before the projection).
  Tensor heads_output(const Tensor& x, int64_t position_offset = 0) const;
  Tensor heads_output_cached(const Tensor& x, WindowCache& cache, int64_t position) const;
  // x's tokens attending among themselves only (positions from 0), whatever the sequence split:
  // Titans' MAC attends inside a segment.
  Tensor local_heads_output(const Tensor& x) const;
  // LASP-2H (and its halo form for a window) runs the tiled kernel only.
  std::string sequence_parallel_refusal() const override;
  // The heads' outputs [B, T, H, e] of this call's queries q against keys and values that may
  // start before them (options.query_offset: a sequence-parallel gather or halo, a decoding
  // cache); x is the layer's input. Softmax attention here; MoH weighs the heads by its router.
  virtual Tensor attend_heads(const Tensor& x, const Tensor& q, const Tensor& keys, const Tensor& values,
                              const AttentionOptions& options) const;

  Linear &q_proj, &k_proj, &v_proj, &o_proj;
  int64_t n_heads, head_dim;

 private:
  JoinedLinear qkv_;  // q_proj, k_proj and v_proj as one GEMM
  // q, k (RoPE at positions from `position` on) and v of x's tokens, [B, T, H, d] each.
  struct Heads {
    Tensor q, k, v;
  };
  Heads project_heads(const Tensor& x, int64_t position) const;

 public:
  double rope_theta;
  AttentionOptions attention_options;
};

class TransformerBlock : public Module {
 public:
  // The block's attention (module "attn"), made by the family: CausalSelfAttention by default, or
  // a mixer derived from it (MoH).
  using AttentionMaker = std::function<std::unique_ptr<CausalSelfAttention>()>;
  TransformerBlock(const ModelConfig& c, const TransformerOptions& o, Generator& gen, const AttentionMaker& make = {});
  // cache (decoding): the attention's keys and values so far, `position` tokens in.
  Tensor forward(const Tensor& x, WindowCache* cache = nullptr, int64_t position = 0) const;

  RMSNorm& attn_norm;
  CausalSelfAttention& attn;
  RMSNorm& mlp_norm;
  SwiGLU& mlp;
};

// Decoding (forward_with_state, block_stack.h) keeps every layer's keys and values.
class Transformer : public BlockStack<TransformerBlock, WindowCache> {
 public:
  Transformer(const ModelConfig& c, Generator& gen);
  double train_flops_per_token(int64_t seq_len) const override;

 private:
  ModelConfig config_;
  TransformerOptions options_;
};

// GPT-2's scaled initialisation of the projections that write into the residual stream, so its
// variance does not grow with depth: init_std / sqrt(2 n_layers).
double residual_std(const ModelConfig& c);

FamilySpec transformer_family();

}  // namespace eat::models
