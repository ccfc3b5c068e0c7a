#pragma once
// The frame shared by the families whose network is
//   token embedding -> blocks -> final RMSNorm -> output head (tied to the embedding, or its own)
// (transformer, BASED, RAT): the modules of that frame, the forward over whole sequences, and
// decoding, which carries one LayerState per block from call to call. A family derives from
// BlockStack<Block, LayerState>, appends its blocks to layers() in its constructor and then calls
// add_head(). Block needs forward(x) for whole sequences and, for decoding,
// forward(x, LayerState*, position): the call's tokens start `position` tokens into the sequence;
// LayerState needs bytes(), what it holds (Decoder::state_bytes).
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "framework/autograd.h"
#include "framework/model.h"
#include "framework/nn/layers.h"
#include "framework/ops.h"

namespace eat::models {

template <typename Block, typename LayerState>
class BlockStack : public LanguageModel {
 public:
  // What decoding carries between calls: every block's state and the number of tokens seen.
  struct DecodeState {
    std::vector<LayerState> layers;
    int64_t position = 0;
  };

  ModelOutput forward(const Tensor& ids) override {
    Tensor x = embed(ids);
    for (size_t i = 0; i < layers_.size(); ++i) x = layers_[i].forward(x);
    return {head(x)};
  }

  // The same network carried across calls (decoding, under NoGradGuard): state is empty before the
  // first call and is updated in place; ids [B, T] may hold one token or a whole prompt.
  Tensor forward_with_state(const Tensor& ids, DecodeState& state) {
    EAT_CHECK(!autograd::grad_enabled(), family_, ": forward_with_state decodes without gradients (use NoGradGuard)");
    Tensor x = embed(ids);
    state.layers.resize(layers_.size());
    for (size_t i = 0; i < layers_.size(); ++i) x = layers_[i].forward(x, &state.layers[i], state.position);
    state.position += ids.size(1);
    return head(x);
  }

  std::unique_ptr<Decoder> decoder() override { return std::make_unique<StackDecoder>(*this); }

 protected:
  // The embedding (drawn first), the empty block list and the final norm, in the parameter order
  // checkpoints keep: embed, layers, norm, lm_head.
  BlockStack(std::string family, const ModelConfig& c, double norm_eps, Generator& gen)
      : family_(std::move(family)),
        compute_dtype_(c.activation_dtype()),
        embed_(add_module<Embedding>("embed", c.vocab_size, c.d_model, gen, c.init_std, c.dtype)),
        layers_(add_module<ModuleList<Block>>("layers")),
        norm_(add_module<RMSNorm>("norm", c.d_model, norm_eps, c.dtype)) {}

  // After the blocks (whose weights are drawn before it): the output head's own weights, unless
  // it is tied to the embedding.
  void add_head(const ModelConfig& c, bool tie_embeddings, Generator& gen) {
    if (!tie_embeddings)
      lm_head_ = &add_module<Linear>("lm_head", c.d_model, c.vocab_size, false, gen, c.init_std, c.dtype);
  }

  ModuleList<Block>& layers() { return layers_; }

 private:
  // forward_with_state behind the Decoder interface: the state starts empty.
  class StackDecoder : public Decoder {
   public:
    explicit StackDecoder(BlockStack& model) : model_(model) {}
    Tensor step(const Tensor& ids) override {
      NoGradGuard no_grad;
      return model_.forward_with_state(ids, state_);
    }
    int64_t state_bytes() const override {
      int64_t bytes = 0;
      for (const LayerState& layer : state_.layers) bytes += layer.bytes();
      return bytes;
    }

   private:
    BlockStack& model_;
    DecodeState state_;
  };

  Tensor embed(const Tensor& ids) const {
    EAT_CHECK(ids.dim() == 2, family_, ": ids must be [batch, time], got ", shape_str(ids.shape()));
    return cast(embed_.forward(ids), compute_dtype_);
  }
  Tensor head(const Tensor& x) const {
    Tensor normed = norm_.forward(x);
    return linear(normed, like_activations(lm_head_ ? lm_head_->weight : embed_.weight, normed));
  }

  std::string family_;
  DType compute_dtype_;
  Embedding& embed_;
  ModuleList<Block>& layers_;
  RMSNorm& norm_;
  Linear* lm_head_ = nullptr;  // absent when tied to the embedding
};

}  // namespace eat::models
