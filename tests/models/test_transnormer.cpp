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
  c.options.set("glu_hidden", int64_t{12});
  c.options.set("attention", impl);
  c.options.set("block", block);
  return c;
}

}  // namespace

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

TEST_CASE("transnormer: chunked, recurrent and naive kernels give the same logits (f64)") {
  Tensor ids = Tensor::from_vector<int32_t>({1, 5, 2, 7, 3, 0, 10, 4, 4, 6, 9, 8, 2, 2}, {2, 7});
  std::vector<std::vector<double>> out;
  for (const char* impl : {"naive", "recurrent", "chunked"}) {
    Generator gen(2);
    auto model = build_model(tiny_config(DType::f64, impl, 3), gen);
    NoGradGuard no_grad;
    out.push_back(model->forward(ids).to_f64_vector());
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
  auto full = model->forward(Tensor::from_vector<int32_t>(seq, {1, 9})).to_f64_vector();
  std::vector<Tensor> states;
  std::vector<double> stepped;
  for (int32_t id : seq) {
    auto logits = tnl->forward_with_state(Tensor::from_vector<int32_t>({id}, {1, 1}), states, LinearAttentionImpl::recurrent);
    auto v = logits.to_f64_vector();
    stepped.insert(stepped.end(), v.begin(), v.end());
  }
  CHECK(rel_error(stepped, full) < 1e-12);
  // Prefill a prompt in one chunked call, then continue one token at a time.
  std::vector<Tensor> st2;
  auto prefill = tnl->forward_with_state(Tensor::from_vector<int32_t>({1, 5, 2, 7, 3}, {1, 5}), st2, LinearAttentionImpl::chunked);
  std::vector<double> mixed = prefill.to_f64_vector();
  for (int32_t id : {0, 10, 4, 9}) {
    auto v = tnl->forward_with_state(Tensor::from_vector<int32_t>({id}, {1, 1}), st2, LinearAttentionImpl::recurrent).to_f64_vector();
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
  auto loss = [&](const std::vector<Tensor>&) { return cross_entropy(reshape(model->forward(ids), {10, 11}), targets); };
  CHECK(gradcheck("transnormer loss", loss, inputs, {1e-6, 1e-5, 1e-9}) <= 1.0);
}
