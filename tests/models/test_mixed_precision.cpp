// Mixed precision on the CPU, where it can be checked against a reference: f64 master weights
// computed in f32 (the same mechanism as f32 masters computed in bf16 on a GPU) against the pure
// f64 model. Also: without a compute type no cast is recorded, and moving a model to the device
// it is already on changes nothing.
#include <doctest/doctest.h>

#include <functional>
#include <unordered_set>

#include "framework/autograd.h"
#include "framework/model.h"
#include "framework/ops.h"
#include "gradcheck.h"
#include "tiny_model.h"

using namespace eat;
using namespace eat::test;

namespace {

// How many nodes named `op` the graph behind `root` holds.
int count_nodes(const Tensor& root, const std::string& op) {
  int n = 0;
  std::unordered_set<Node*> seen;
  std::function<void(const std::shared_ptr<Node>&)> visit = [&](const std::shared_ptr<Node>& node) {
    if (!node || !seen.insert(node.get()).second) return;
    n += node->name == op;
    for (const Tensor& in : node->inputs)
      if (in.defined()) visit(in.impl().grad_fn);
  };
  visit(root.impl().grad_fn);
  return n;
}

Tensor tiny_ids() { return Tensor::from_vector<int32_t>({1, 4, 7, 2, 9, 0, 3, 3, 5, 10, 6, 8}, {2, 6}); }

// Loss of the model on fixed ids and targets, with the logits in the loss's type (f64 here).
Tensor tiny_loss(LanguageModel& model) {
  Tensor logits = model.forward(tiny_ids()).logits;
  logits = cast(logits, model.parameters().front().tensor.dtype());
  Tensor targets = Tensor::from_vector<int32_t>({4, 7, 2, 9, 0, 3, 3, 5, 10, 6, 8, 1}, {12});
  return cross_entropy(reshape(logits, {12, logits.size(-1)}), targets);
}

}  // namespace

TEST_CASE("mixed precision: f64 masters computed in f32 track the f64 model, gradients arrive in f64") {
  for (const std::string& family : family_names()) {
    CAPTURE(family);
    ModelConfig ref_config = tiny_model_config(family, DType::f64);
    ModelConfig mixed_config = ref_config;
    mixed_config.compute_dtype = DType::f32;
    Generator g1(7), g2(7);
    auto ref = build_model(ref_config, g1);
    auto mixed = build_model(mixed_config, g2);

    Tensor ref_logits = ref->forward(tiny_ids()).logits;
    Tensor mixed_logits = mixed->forward(tiny_ids()).logits;
    CHECK(ref_logits.dtype() == DType::f64);
    CHECK(mixed_logits.dtype() == DType::f32);  // activations in the compute type
    CHECK(rel_error(mixed_logits.to(DType::f64), ref_logits) < 1e-5);
    CHECK(count_nodes(ref_logits, "cast") == 0);
    // Every weight matrix, norm weight and the embedding output is cast once per use.
    CHECK(count_nodes(mixed_logits, "cast") > 0);

    Tensor ref_loss = tiny_loss(*ref), mixed_loss = tiny_loss(*mixed);
    CHECK(mixed_loss.dtype() == DType::f64);
    CHECK(mixed_loss.item() == doctest::Approx(ref_loss.item()).epsilon(1e-5));
    ref_loss.backward();
    mixed_loss.backward();
    auto ref_params = ref->parameters(), mixed_params = mixed->parameters();
    REQUIRE(ref_params.size() == mixed_params.size());
    for (size_t i = 0; i < ref_params.size(); ++i) {
      CAPTURE(ref_params[i].name);
      Tensor g = mixed_params[i].tensor.grad();
      REQUIRE(g.defined());
      CHECK(g.dtype() == DType::f64);  // the master's type
      CHECK(rel_error(g, ref_params[i].tensor.grad()) < 1e-4);
    }
  }
}

TEST_CASE("mixed precision: Module::to_ the device a model is on keeps every handle and byte") {
  Generator gen(3);
  auto model = build_model(tiny_model_config("transformer", DType::f32), gen);
  Tensor w = model->parameter("layers.0.attn.q_proj.weight");
  const void* before = w.raw_data();
  const std::vector<double> values = w.to_f64_vector();
  model->to_(Device::cpu);
  CHECK(w.raw_data() == before);
  CHECK(model->parameter("layers.0.attn.q_proj.weight").same(w));
  CHECK(w.to_f64_vector() == values);
  CHECK(w.requires_grad());
}
