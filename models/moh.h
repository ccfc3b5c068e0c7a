#pragma once
// MoH (Jin et al., "MoH: Multi-Head Attention as Mixture-of-Head Attention", arXiv 2410.11842,
// with the gate semantics of the released ViT/DiT code, spec moh.md): the transformer family's
// network whose attention layers weigh their heads per token. A router reads each token's
// attention input: `shared_heads` heads are always on, weighted by a softmax over them; the other
// R heads are routed, the top_k of a softmax over them on (renormalised over the chosen, scaled by
// top_k), the two groups mixed by a 2-way softmax (scaled by 2), so the mean gate is 1. Each head's
// output is scaled by its gate before the output projection, and a head whose gate is 0 costs no
// attention work. A load-balance loss (the reference's E sum_i me_i ce_i over the routed heads,
// averaged over layers) joins the training loss with weight balance_weight.
#include <vector>

#include "framework/model.h"
#include "framework/nn/layers.h"
#include "framework/ops.h"
#include "models/block_stack.h"
#include "models/transformer.h"

namespace eat::models {

struct MohOptions {
  TransformerOptions base;  // everything but the heads' gates is the transformer's
  int64_t shared_heads;
  int64_t top_k;
  double balance_weight;
  static MohOptions from(const ModelConfig& config);
};

// What one MoH layer's router did in its last forward, over the tokens of the micro-batch (and of
// the whole sequence-parallel group): the load-balance term E sum_i me_i ce_i (differentiable
// through me, the mean routed probability of head i) and use [R], the fraction of tokens whose
// top_k held each routed head (ce; no gradient).
struct MohRouting {
  Tensor balance, use;
};

class MohAttention : public CausalSelfAttention {
 public:
  MohAttention(const ModelConfig& c, const MohOptions& o, Generator& gen);
  // The heads' outputs, each scaled by its gate (gated_attention: pairs whose gate is 0 are skipped).
  Tensor attend_heads(const Tensor& x, const Tensor& q, const Tensor& keys, const Tensor& values,
                      const AttentionOptions& options) const override;
  // The routing of the last forward (set by every forward, so the model reads it after its own).
  const MohRouting& last_routing() const { return last_; }

  Linear* shared_router = nullptr;  // D -> shared_heads (absent without shared heads)
  Linear& routed_router;            // D -> R
  Linear* mix_router = nullptr;     // D -> 2 (absent without shared heads)
  int64_t shared_heads, top_k;

 private:
  mutable MohRouting last_;
};

// Decoding (forward_with_state, block_stack.h) keeps every layer's keys and values, as the
// transformer's, for every head: a later token may route to any of them.
class Moh : public BlockStack<TransformerBlock, WindowCache> {
 public:
  Moh(const ModelConfig& c, Generator& gen);
  // The logits and the aux terms: "balance" (weight balance_weight), and one statistic per routed
  // head of each layer, "use_l<layer>_h<head>" (weight 0: logged only), the fraction of tokens
  // that chose it.
  ModelOutput forward(const Tensor& ids) override;
  double train_flops_per_token(int64_t seq_len) const override;
  const MohOptions& options() const { return options_; }

 private:
  ModelConfig config_;
  MohOptions options_;
  std::vector<const MohAttention*> attention_;  // every layer's, for the routing statistics
};

FamilySpec moh_family();

}  // namespace eat::models
