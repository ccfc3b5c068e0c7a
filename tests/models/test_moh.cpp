// What is particular to the MoH family: with its router zeroed and every routed head chosen it is
// the transformer; its layer is the router's gates times dense attention per head; the
// load-balance term and the head use it reports; decoding with the key/value cache of every head;
// the family's checks and its FLOPs. The gradient check of the whole tiny model (the sparse path,
// one of two heads per token) and mixed precision run for every family in test_families.cpp /
// test_mixed_precision.cpp.
#include <doctest/doctest.h>

#include "base/error.h"
#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops.h"
#include "gradcheck.h"
#include "models/moh.h"
#include "models/tiny_model.h"
#include "rel_error.h"

using namespace eat;
using namespace eat::test;

namespace {

// d_model 8 with `heads` heads, `shared` shared and the top `k` of the rest.
ModelConfig moh_config(int64_t heads, int64_t shared, int64_t k) {
  ModelConfig c = tiny_model_config("moh", DType::f64);
  c.n_heads = heads;
  c.options.set("shared_heads", shared);
  c.options.set("top_k", k);
  return c;
}

void zero_routers(LanguageModel& model) {
  for (auto& p : model.parameters())
    if (p.name.find("router") != std::string::npos) p.tensor.fill_(0.0);
}

// Tokens [t0, t1) of a fixed sequence, [1, t1 - t0].
Tensor some_ids(int64_t t1, int64_t t0 = 0) {
  std::vector<int32_t> ids;
  for (int64_t t = t0; t < t1; ++t) ids.push_back(static_cast<int32_t>((5 * t + 3) % 11));
  return Tensor::from_vector<int32_t>(ids, {1, t1 - t0});
}

models::Moh& as_moh(std::unique_ptr<LanguageModel>& model) {
  auto* moh = dynamic_cast<models::Moh*>(model.get());
  REQUIRE(moh);
  return *moh;
}

}  // namespace

TEST_CASE("moh: with the router zeroed and every routed head chosen, every gate is 1 and MoH is the transformer (f64)") {
  for (int64_t shared : {0, 1, 3}) {
    CAPTURE(shared);
    Generator g1(1), g2(2);
    auto moh = build_model(moh_config(4, shared, 4 - shared), g1);
    ModelConfig tc = tiny_model_config("transformer", DType::f64);
    tc.n_heads = 4;
    auto transformer = build_model(tc, g2);
    zero_routers(*moh);
    // The transformer's weights, by name, into the MoH model.
    for (auto& p : transformer->parameters()) moh->parameter(p.name).copy_from(p.tensor);
    const Tensor ids = some_ids(7);
    CHECK(rel_error(moh->forward(ids).logits, transformer->forward(ids).logits) < 1e-13);
  }
}

TEST_CASE("moh: a zeroed router breaks its ties toward the lowest heads: balance = top_k, and the use of each head") {
  Generator gen(3);
  auto model = build_model(moh_config(4, 1, 2), gen);
  zero_routers(*model);
  const ModelOutput out = model->forward(some_ids(6));
  // p = 1/3 for each routed head, heads 1 and 2 chosen by every token: E sum_i me_i ce_i =
  // 3 (1/3 + 1/3) = 2 in both layers; head 3 is never used.
  REQUIRE(out.aux.size() == 1 + 2 * 3);
  CHECK(out.aux[0].name == "balance");
  CHECK(out.aux[0].weight == 0.01);
  CHECK(out.aux[0].value.item() == doctest::Approx(2.0).epsilon(1e-14));
  for (int l = 0; l < 2; ++l)
    for (int h = 1; h <= 3; ++h) {
      const AuxLoss& use = out.aux[static_cast<size_t>(1 + 3 * l + h - 1)];
      CHECK(use.name == "use_l" + std::to_string(l) + "_h" + std::to_string(h));
      CHECK(use.weight == 0.0);
      CHECK(use.value.item() == (h < 3 ? 1.0 : 0.0));
    }
}

TEST_CASE("moh: the layer is its router's gates times dense attention per head, through o_proj (f64)") {
  for (auto [shared, k] : {std::pair<int64_t, int64_t>{1, 2}, {0, 1}, {2, 1}}) {
    CAPTURE(shared);
    CAPTURE(k);
    ModelConfig c = moh_config(4, shared, k);
    Generator gen(4);
    const models::MohOptions o = models::MohOptions::from(c);
    models::MohAttention layer(c, o, gen);
    const int64_t B = 2, T = 6, H = 4, d = 2;
    Tensor x = Tensor::randn({B, T, 8}, gen, 1.0, DType::f64);
    // The reference: the router's gates by the op, softmax attention over every head, each head's
    // output scaled by its gate.
    const Shape heads{B, T, H, d};
    Tensor q = rope(reshape(layer.q_proj.forward(x), heads)), kk = rope(reshape(layer.k_proj.forward(x), heads));
    Tensor a = attention(q, kk, reshape(layer.v_proj.forward(x), heads));
    const MohGates g = moh_gates(layer.shared_router ? layer.shared_router->forward(x) : Tensor(),
                                 layer.routed_router.forward(x), layer.mix_router ? layer.mix_router->forward(x) : Tensor(), k);
    std::vector<double> av = a.to_f64_vector();
    const std::vector<double> gv = g.gates.to_f64_vector();
    for (size_t i = 0; i < av.size(); ++i) av[i] *= gv[i / static_cast<size_t>(d)];
    Tensor want = layer.o_proj.forward(reshape(Tensor::from_vector<double>(av, heads), {B, T, 8}));
    CHECK(rel_error(layer.forward(x), want) < 1e-13);
    // And (shared + k) of the 4 gates are non-zero per token.
    for (int64_t t = 0; t < B * T; ++t) {
      int active = 0;
      for (int64_t h = 0; h < H; ++h) active += gv[static_cast<size_t>(t * H + h)] != 0.0;
      CHECK(active == shared + k);
    }
  }
}

TEST_CASE("moh: the load-balance term's gradient reaches the routers (f64, central differences)") {
  Generator gen(5);
  auto model = build_model(moh_config(4, 1, 2), gen);
  const Tensor ids = some_ids(6);
  std::vector<Tensor> routers;
  for (auto& p : model->parameters())
    if (p.name.find("layers.0.attn.routed_router") != std::string::npos) routers.push_back(p.tensor);
  REQUIRE(routers.size() == 1);
  auto loss = [&](const std::vector<Tensor>&) { return model->forward(ids).aux[0].value; };
  CHECK(gradcheck("moh balance", loss, routers, {1e-6, 1e-6, 1e-10}) <= 1.0);
}

TEST_CASE("moh: decoding with the key/value cache of every head gives the full forward's logits (f64)") {
  Generator gen(6);
  auto model = build_model(moh_config(4, 1, 1), gen);
  models::Moh& moh = as_moh(model);
  NoGradGuard no_grad;
  const std::vector<double> full = model->forward(some_ids(9)).logits.to_f64_vector();
  models::Moh::DecodeState state;
  std::vector<double> stepped = moh.forward_with_state(some_ids(4), state).to_f64_vector();
  for (int64_t t = 4; t < 9; ++t) {
    auto v = moh.forward_with_state(some_ids(t + 1, t), state).to_f64_vector();
    stepped.insert(stepped.end(), v.begin(), v.end());
  }
  CHECK(rel_error(stepped, full) < 1e-10);
  CHECK(state.layers[1].keys.size(2) == 4);  // every head's keys, routed or not
}

TEST_CASE("moh: the family's checks name the key and the numbers") {
  const FamilySpec* moh = find_family("moh");
  REQUIRE(moh);
  CHECK(moh->check(moh_config(4, 1, 2), 64, 1) == "");
  CHECK(moh->check(moh_config(4, 4, 1), 64, 1) == "shared_heads = 4 leaves no routed head (model.n_heads = 4)");
  CHECK(moh->check(moh_config(4, 1, 4), 64, 1) == "top_k = 4 is more than the 3 routed heads (model.n_heads - shared_heads)");
}

TEST_CASE("moh: FLOPs per token count attention for the active heads only") {
  using flops::Pass;
  ModelConfig c = moh_config(4, 1, 1);
  Generator gen(7);
  auto model = build_model(c, gen);
  const int64_t D = 8, F = 12, V = 11, T = 16;
  const double per_layer = 4 * flops::linear(1, D, D, Pass::forward) + 3 * flops::linear(1, D, F, Pass::forward) +
                           flops::linear(1, D, 4 + 2, Pass::forward) +
                           0.5 * flops::attention(1, T, 4, 2, 2, true, -1, Pass::forward) / T;
  CHECK(model->train_flops_per_token(T) == doctest::Approx(3 * (2 * per_layer + flops::linear(1, D, V, Pass::forward))));
}
