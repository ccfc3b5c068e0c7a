#pragma once
// Linear layers that read the same input, run as one GEMM per pass. Their weights move into one
// storage, rows one after another, so the joined weight [sum out, in] is a free view
// (concat_outer) and the backward is one GEMM for the input's gradient (no sum of one product
// per layer) and one for the weights'. Each layer keeps its own parameter: the names and shapes
// that checkpoints, optimizer state and users see stay those of the separate layers, and a
// checkpoint saved before the join loads as it did. The joined GEMM blocks its product
// differently, so outputs may differ from the separate products in the last bits.
#include <utility>
#include <vector>

#include "framework/ops/joins.h"

namespace eat {

class Linear;

class JoinedLinear {
 public:
  // The layers in the order their outputs' columns follow each other; one input width and dtype,
  // all with biases or none (the biases are joined the same way).
  explicit JoinedLinear(std::vector<Linear*> layers);
  // x [..., in] -> [..., sum out]: the layers' outputs side by side.
  Tensor forward(const Tensor& x) const;
  // The layers' outputs, each its own tensor (linear_split: forward, then split_last, without the
  // joined output where the CPU's GEMM can write the parts), each then through its op in `then`
  // (SiLU, RoPE) where given.
  std::vector<Tensor> forward_split(const Tensor& x, const std::vector<PartThen>& then = {}) const;
  // The joined weight [sum out, in] in x's compute dtype, for an op that takes it whole (a gated
  // MLP's gate and up projections: gated_mlp); the layers must have no biases.
  Tensor joined_weight(const Tensor& x) const;

 private:
  // The joined weight and bias (undefined without biases), in x's compute dtype.
  std::pair<Tensor, Tensor> joined_parameters(const Tensor& x) const;

  std::vector<Linear*> layers_;
  std::vector<int64_t> widths_;
};

}  // namespace eat
