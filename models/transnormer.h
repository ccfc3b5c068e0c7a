#pragma once
// TransNormerLLM (TNL, arXiv 2405.17381, as released in OpenNLPLab/TransnormerLLM): pre-norm blocks of
//   x = x + NormLinearAttention(SRMSNorm(x));  x = x + SGLU(SRMSNorm(x))
// and a final SRMSNorm before the output head; the embedding is scaled by sqrt(d_model).
// The token mixer: q, k, v, u projections; SiLU on q and k; decayed causal linear attention
// (Lightning Attention-2) with the released code's fixed per-head, per-layer decay; SRMSNorm
// over all heads jointly; times u; output projection. No LRPE (pure exponential decay in every
// layer, the spec's first variant).
#include <memory>
#include <vector>

#include "framework/model.h"
#include "framework/nn/layers.h"
#include "framework/nn/sequence_mixer.h"
#include "framework/parallel/lasp2.h"
#include "framework/ops.h"

namespace eat::models {

// The ALiBi head slopes the released code takes its decay from: for H a power of 2,
// slope_h = 2^(-8 (h + 1) / H); otherwise the H' = 2^floor(log2 H) slopes of that form, then every
// other slope of the 2H'-head set (for H = 12: 1/2 ... 1/256, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5).
std::vector<double> alibi_slopes(int64_t n_heads);
// The released code's decay: the ALiBi slope scaled by (1 - l / (L - 1) + 1e-5), lambda =
// exp(-slope). Layer 0 decays fastest; the last layer hardly at all.
std::vector<double> transnormer_decay(int64_t n_heads, int64_t layer, int64_t n_layers);

struct TransNormerOptions {
  int64_t mlp_hidden;  // SGLU hidden width
  double norm_eps;
  bool scale_embedding;
  bool tie_embeddings;
  LightningOptions attention;
  static TransNormerOptions from(const ModelConfig& config);
};

class NormLinearAttention : public SequenceMixer {
 public:
  NormLinearAttention(const ModelConfig& c, const TransNormerOptions& o, int64_t layer, Generator& gen);
  // x [B, T, D] -> [B, T, D]. state (optional, [B, H, d, d]) is the recurrent state before x;
  // when final_state is given it receives the state after x (decoding, sequence parallelism).
  // With a residual ([B, T, D]) the output projection writes onto it: residual + attention(x).
  Tensor forward(const Tensor& x, const Tensor& state = Tensor(), Tensor* final_state = nullptr,
                 const Tensor& residual = Tensor()) const;

  Linear &q_proj, &k_proj, &v_proj, &u_proj, &o_proj;
  int64_t n_heads, head_dim;
  double norm_eps;
  std::vector<double> decay;
  LightningOptions attention_options;

 private:
  JoinedLinear qkvu_;  // q_proj, k_proj, v_proj and u_proj as one GEMM
};

class TransNormerBlock : public Module {
 public:
  TransNormerBlock(const ModelConfig& c, const TransNormerOptions& o, int64_t layer, Generator& gen);
  Tensor forward(const Tensor& x, const Tensor& state = Tensor(), Tensor* final_state = nullptr) const;

  NormLinearAttention& attn;
  SGLU& mlp;
  double norm_eps;
};

class TransNormer : public LanguageModel {
 public:
  TransNormer(const ModelConfig& c, Generator& gen);
  ModelOutput forward(const Tensor& ids) override;
  // The same network carried across calls through per-layer states (decoding): states holds one
  // [B, H, d, d] tensor per layer, empty before the first call, updated in place.
  Tensor forward_with_state(const Tensor& ids, std::vector<Tensor>& states, LightningImpl impl);
  // Decoding state: one [B, H, d, d] state per layer, the same size at any length. A prompt runs
  // through the chunked kernel, one token through the recurrent one.
  std::unique_ptr<Decoder> decoder() override;
  double train_flops_per_token(int64_t seq_len) const override;

 private:
  Tensor embed(const Tensor& ids) const;
  Tensor head(const Tensor& x) const;

  ModelConfig config_;
  TransNormerOptions options_;
  Embedding& embed_;
  ModuleList<TransNormerBlock>& layers_;
  Linear* lm_head_ = nullptr;
};

FamilySpec transnormer_family();

}  // namespace eat::models
