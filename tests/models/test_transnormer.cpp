#include <doctest/doctest.h>

#include <cmath>

#include "framework/autograd.h"
#include "framework/model.h"
#include "framework/ops.h"
#include "gradcheck.h"
#include "tiny_model.h"
#include "models/transnormer.h"

using namespace eat;
using namespace eat::test;

namespace {

ModelConfig tiny_config(DType dtype, const std::string& impl = "chunked", int64_t block = 4) {
  ModelConfig c = tiny_model_config("transnormer", dtype);
  c.options.set("attention", impl);
  c.options.set("block", block);
  return c;
}

}  // namespace

TEST_CASE("transnormer: ALiBi slopes for a head count that is not a power of 2") {
  // The released get_slopes(12): the 8 slopes of 8 heads, then slopes 0, 2, 4, 6 of the 16-head set.
  const std::vector<double> want = {0.5,   0.25,  0.125,  0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625,
                                    std::pow(2.0, -0.5), std::pow(2.0, -1.5), std::pow(2.0, -2.5), std::pow(2.0, -3.5)};
  const std::vector<double> got = models::alibi_slopes(12);
  REQUIRE(got.size() == want.size());
  for (size_t h = 0; h < want.size(); ++h) CHECK(got[h] == doctest::Approx(want[h]).epsilon(1e-15));
  // Powers of 2 keep the closed form; 6 heads: 4 slopes of 4 heads, then 2^-1 and 2^-3 of the 8-head set.
  for (int64_t H : {1, 2, 4, 8, 16})
    for (int64_t h = 0; h < H; ++h)
      CHECK(models::alibi_slopes(H)[static_cast<size_t>(h)] == std::pow(2.0, -8.0 * static_cast<double>(h + 1) / static_cast<double>(H)));
  const std::vector<double> six = models::alibi_slopes(6);
  CHECK(six == std::vector<double>{0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125});
  const auto l0 = models::transnormer_decay(12, 0, 12);
  CHECK(l0[8] == doctest::Approx(std::exp(-std::pow(2.0, -0.5) * (1 + 1e-5))).epsilon(1e-15));
}

TEST_CASE("transnormer: the released code's decay schedule") {
  auto l0 = models::transnormer_decay(8, 0, 24);
  CHECK(l0[0] == doctest::Approx(std::exp(-0.5 * (1 + 1e-5))).epsilon(1e-15));  // slope 2^-1
  CHECK(l0[7] == doctest::Approx(std::exp(-std::pow(2.0, -8) * (1 + 1e-5))).epsilon(1e-15));
  auto last = models::transnormer_decay(8, 23, 24);
  CHECK(last[0] == doctest::Approx(std::exp(-0.5 * 1e-5)).epsilon(1e-15));  // practically no decay
  for (double l : models::transnormer_decay(4, 0, 1)) CHECK((l > 0 && l < 1));
}

TEST_CASE("transnormer: parameter names and counts") {
  Generator gen(1);
  auto model = build_model(tiny_config(DType::f32), gen);
  CHECK(model->parameter("layers.1.attn.u_proj.weight").shape() == Shape{8, 8});
  CHECK(model->parameter("layers.0.mlp.l3.weight").shape() == Shape{8, 12});
  // embed + 2 x (5 attention + 3 mlp) + head; SRMSNorm has no weights.
  CHECK(model->parameters().size() == 1 + 2 * 8 + 1);
  CHECK(model->num_parameters() == 11 * 8 + 2 * (5 * 64 + 3 * 8 * 12) + 11 * 8);
}

TEST_CASE("transnormer: FLOPs per token follow 6N plus the chunked attention's blocks") {
  Generator gen(5);
  auto model = build_model(tiny_config(DType::f32), gen);  // blocks of 4
  const double matmul_params = 2 * (5 * 64 + 3 * 8 * 12) + 8 * 11;
  // T = 6 in blocks of 4 and 2, per head (d = e = 4): the state updates (2 L d e) of both blocks and
  // the second one's inter-block q S (2 L d e), and the 10 + 3 pairs of the causal tiles at
  // 2 (d + e) each; 2 layers of 2 heads, averaged over the 6 tokens, 3x for the backward.
  const double per_head = 2 * 16 * (4 + 2 + 2) + 13 * 2 * 8;
  CHECK(model->train_flops_per_token(6) == doctest::Approx(6 * matmul_params + 3 * 2 * 2 * per_head / 6));
}

TEST_CASE("transnormer: chunked, recurrent and naive kernels give the same logits (f64)") {
  Tensor ids = Tensor::from_vector<int32_t>({1, 5, 2, 7, 3, 0, 10, 4, 4, 6, 9, 8, 2, 2}, {2, 7});
  std::vector<std::vector<double>> out;
  for (const char* impl : {"naive", "recurrent", "chunked"}) {
    Generator gen(2);
    auto model = build_model(tiny_config(DType::f64, impl, 3), gen);
    NoGradGuard no_grad;
    out.push_back(model->forward(ids).logits.to_f64_vector());
  }
  CHECK(rel_error(out[1], out[0]) < 1e-12);
  CHECK(rel_error(out[2], out[0]) < 1e-12);
}

TEST_CASE("transnormer: decoding token by token through the state gives the full forward's logits") {
  Generator gen(3);
  auto model = build_model(tiny_config(DType::f64, "chunked", 4), gen);
  auto* tnl = dynamic_cast<models::TransNormer*>(model.get());
  REQUIRE(tnl);
  std::vector<int32_t> seq = {1, 5, 2, 7, 3, 0, 10, 4, 9};
  NoGradGuard no_grad;
  auto full = model->forward(Tensor::from_vector<int32_t>(seq, {1, 9})).logits.to_f64_vector();
  std::vector<Tensor> states;
  std::vector<double> stepped;
  for (int32_t id : seq) {
    auto logits = tnl->forward_with_state(Tensor::from_vector<int32_t>({id}, {1, 1}), states, LightningImpl::recurrent);
    auto v = logits.to_f64_vector();
    stepped.insert(stepped.end(), v.begin(), v.end());
  }
  CHECK(rel_error(stepped, full) < 1e-12);
  // Prefill a prompt in one chunked call, then continue one token at a time.
  std::vector<Tensor> st2;
  auto prefill = tnl->forward_with_state(Tensor::from_vector<int32_t>({1, 5, 2, 7, 3}, {1, 5}), st2, LightningImpl::chunked);
  std::vector<double> mixed = prefill.to_f64_vector();
  for (int32_t id : {0, 10, 4, 9}) {
    auto v = tnl->forward_with_state(Tensor::from_vector<int32_t>({id}, {1, 1}), st2, LightningImpl::recurrent).to_f64_vector();
    mixed.insert(mixed.end(), v.begin(), v.end());
  }
  CHECK(rel_error(mixed, full) < 1e-12);
}

TEST_CASE("transnormer: gradients of the loss against finite differences, every parameter (f64)") {
  Generator gen(4);
  auto model = build_model(tiny_config(DType::f64, "chunked", 3), gen);
  Tensor ids = Tensor::from_vector<int32_t>({1, 5, 2, 7, 3, 0, 10, 4, 4, 6}, {2, 5});
  Tensor targets = Tensor::from_vector<int32_t>({5, 2, 7, 3, 0, 10, 4, 4, 6, 1}, {10});
  std::vector<Tensor> inputs;
  for (const Parameter& p : model->parameters()) inputs.push_back(p.tensor);
  auto loss = [&](const std::vector<Tensor>&) { return cross_entropy(reshape(model->forward(ids).logits, {10, 11}), targets); };
  CHECK(gradcheck("transnormer loss", loss, inputs, {1e-6, 1e-5, 1e-9}) <= 1.0);
}
