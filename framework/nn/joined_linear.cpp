#include "framework/nn/joined_linear.h"

#include "base/error.h"
#include "framework/nn/layers.h"

namespace eat {

namespace {

// Moves the tensors' data into one new storage, one after another in the given order. The
// tensors are handles on their TensorImpl, so the modules' fields and parameter lists see the move.
void join_storage(const std::vector<Tensor>& parts) {
  int64_t total = 0;
  for (const Tensor& p : parts) total += p.numel();
  const Tensor joined = Tensor::empty({total}, parts[0].dtype(), parts[0].device());
  int64_t offset = 0;
  for (const Tensor& p : parts) {
    reshape(joined.slice_outer(offset, offset + p.numel()), p.shape()).copy_from(p);
    p.impl().storage = joined.impl().storage;
    p.impl().offset = offset;
    offset += p.numel();
  }
}

}  // namespace

JoinedLinear::JoinedLinear(std::vector<Linear*> layers) : layers_(std::move(layers)) {
  EAT_CHECK(!layers_.empty(), "JoinedLinear: no layers to join");
  const Linear& first = *layers_[0];
  std::vector<Tensor> weights, biases;
  for (const Linear* l : layers_) {
    EAT_CHECK(l->weight.size(1) == first.weight.size(1) && l->weight.dtype() == first.weight.dtype(),
              "JoinedLinear: weights ", l->weight.describe(), " and ", first.weight.describe(),
              " differ in input width or dtype");
    EAT_CHECK(l->bias.defined() == first.bias.defined(), "JoinedLinear: the layers must all have biases or none");
    weights.push_back(l->weight);
    if (l->bias.defined()) biases.push_back(l->bias);
    widths_.push_back(l->weight.size(0));
  }
  join_storage(weights);
  if (!biases.empty()) join_storage(biases);
}

std::pair<Tensor, Tensor> JoinedLinear::joined_parameters(const Tensor& x) const {
  std::vector<Tensor> weights, biases;
  for (const Linear* l : layers_) {
    weights.push_back(l->weight);
    if (l->bias.defined()) biases.push_back(l->bias);
  }
  const Tensor bias = biases.empty() ? Tensor() : like_activations(concat_outer(biases), x);
  return {like_activations(concat_outer(weights), x), bias};
}

Tensor JoinedLinear::forward(const Tensor& x) const {
  const auto [weight, bias] = joined_parameters(x);
  return linear(x, weight, bias);
}

Tensor JoinedLinear::joined_weight(const Tensor& x) const {
  const auto [weight, bias] = joined_parameters(x);
  EAT_CHECK(!bias.defined(), "JoinedLinear: joined_weight is for layers without biases");
  return weight;
}

std::vector<Tensor> JoinedLinear::forward_split(const Tensor& x, const std::vector<PartThen>& then) const {
  const auto [weight, bias] = joined_parameters(x);
  return linear_split(x, weight, bias, widths_, then);
}

}  // namespace eat
