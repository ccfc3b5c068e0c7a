#include <doctest/doctest.h>

#include "framework/autograd.h"
#include "base/error.h"
#include "framework/model.h"
#include "framework/ops.h"
#include "gradcheck.h"
#include "models/transformer.h"
#include "rel_error.h"
#include "tiny_model.h"

using namespace eat;
using namespace eat::test;

namespace {

ModelConfig tiny_config(DType dtype, bool tied = false) {
  ModelConfig c = tiny_model_config("transformer", dtype);
  c.options.set("tie_embeddings", tied);
  return c;
}

Tensor ids_tensor(const std::vector<int32_t>& v, int64_t B, int64_t T) { return Tensor::from_vector<int32_t>(v, {B, T}); }

}  // namespace

TEST_CASE("transformer: parameter names, shapes and counts") {
  Generator gen(1);
  auto model = build_model(tiny_config(DType::f32), gen);
  auto params = model->parameters();
  CHECK(params.front().name == "embed.weight");
  CHECK(model->parameter("layers.1.attn.q_proj.weight").shape() == Shape{8, 8});
  CHECK(model->parameter("layers.0.mlp.down_proj.weight").shape() == Shape{8, 12});
  CHECK(model->parameter("lm_head.weight").shape() == Shape{11, 8});
  // embed + 2 x (2 norms + 4 attention + 3 mlp) + final norm + head
  CHECK(params.size() == 1 + 2 * 9 + 1 + 1);
  const int64_t per_layer = 2 * 8 + 4 * 64 + 3 * 8 * 12;
  CHECK(model->num_parameters() == 11 * 8 + 2 * per_layer + 8 + 11 * 8);
  Generator gen2(1);
  auto tied = build_model(tiny_config(DType::f32, true), gen2);
  CHECK(tied->num_parameters() == model->num_parameters() - 11 * 8);
  CHECK_THROWS_WITH_AS(model->parameter("layers.9.attn.q_proj.weight"), doctest::Contains("layers.9.attn.q_proj.weight"), Error);
}

TEST_CASE("transformer: causal -- a position's logits ignore later tokens") {
  Generator gen(2);
  auto model = build_model(tiny_config(DType::f64), gen);
  NoGradGuard no_grad;
  Tensor a = model->forward(ids_tensor({1, 2, 3, 4, 5, 6}, 1, 6)).logits;
  Tensor b = model->forward(ids_tensor({1, 2, 3, 9, 9, 9}, 1, 6)).logits;
  auto va = a.to_f64_vector(), vb = b.to_f64_vector();
  for (int t = 0; t < 3; ++t)
    for (int j = 0; j < 11; ++j) CHECK(va[t * 11 + j] == vb[t * 11 + j]);
  CHECK(va[3 * 11] != vb[3 * 11]);
}

TEST_CASE("transformer: gradients of the loss against finite differences, every parameter (f64)") {
  for (bool tied : {false, true}) {
    CAPTURE(tied);
    Generator gen(3);
    auto model = build_model(tiny_config(DType::f64, tied), gen);
    Tensor ids = ids_tensor({1, 5, 2, 7, 3, 0, 10, 4, 4, 6}, 2, 5);
    Tensor targets = Tensor::from_vector<int32_t>({5, 2, 7, 3, 0, 10, 4, 4, 6, 1}, {10});
    std::vector<Tensor> inputs;
    for (const Parameter& p : model->parameters()) inputs.push_back(p.tensor);
    // The inputs are the model's own parameter tensors: the checker perturbs them in place.
    auto loss = [&](const std::vector<Tensor>&) {
      return cross_entropy(reshape(model->forward(ids).logits, {10, 11}), targets);
    };
    CHECK(gradcheck("transformer loss", loss, inputs, {1e-6, 1e-5, 1e-9}) <= 1.0);
  }
}

TEST_CASE("transformer: FLOPs per token follow 6N plus causal attention") {
  Generator gen(4);
  auto model = build_model(tiny_config(DType::f32), gen);
  const double matmul_params = 2 * (4 * 64 + 3 * 8 * 12) + 8 * 11;
  const double T = 6, keys = (T + 1) / 2;
  CHECK(model->train_flops_per_token(6) == doctest::Approx(6 * matmul_params + 3 * 2 * 4 * 8 * keys));
}

TEST_CASE("transformer: decoding with the key/value cache gives the full forward's logits, full and windowed (f64)") {
  for (int64_t window : {int64_t{-1}, int64_t{2}}) {
    CAPTURE(window);
    ModelConfig c = tiny_config(DType::f64);
    c.options.set("window", window);
    Generator gen(9);
    auto model = build_model(c, gen);
    auto& transformer = dynamic_cast<models::Transformer&>(*model);
    const std::vector<int32_t> seq = {1, 5, 2, 7, 3, 0, 10, 4};
    NoGradGuard no_grad;
    const auto full = model->forward(ids_tensor(seq, 1, 8)).logits.to_f64_vector();
    models::Transformer::DecodeState state;
    std::vector<double> stepped = transformer.forward_with_state(ids_tensor({1, 5, 2}, 1, 3), state).to_f64_vector();
    for (size_t i = 3; i < seq.size(); ++i) {
      auto v = transformer.forward_with_state(ids_tensor({seq[i]}, 1, 1), state).to_f64_vector();
      stepped.insert(stepped.end(), v.begin(), v.end());
    }
    CHECK(rel_error(stepped, full) < 1e-10);
    // Every key for full attention, the last `window` for a window.
    CHECK(state.layers[0].keys.size(1) == (window < 0 ? 8 : window));
  }
}
