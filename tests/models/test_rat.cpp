// What is particular to the RAT family: the RAT layer against a loop over the spec's formulas (the
// gate and its bias, the groups shared by the heads, the chunk-reset scan, chunk-level RoPE, the
// summaries of earlier chunks and the own key in one softmax), decoding with the running state and
// the summary cache, the family's checks and its FLOPs. The gradient check of the whole tiny
// model and mixed precision run for every family in test_families.cpp / test_mixed_precision.cpp.
#include <doctest/doctest.h>

#include <cmath>

#include "base/error.h"
#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops.h"
#include "models/rat.h"
#include "models/tiny_model.h"
#include "naive_layers.h"
#include "rel_error.h"

using namespace eat;
using namespace eat::test;

namespace {

// d_model 8, 2 heads of 4; `heads` heads and `ngroups` groups when given.
ModelConfig rat_config(int64_t chunk, int64_t ngroups, int64_t heads = 2) {
  ModelConfig c = tiny_model_config("rat", DType::f64);
  c.n_heads = heads;
  c.options.set("chunk", chunk);
  c.options.set("ngroups", ngroups);
  return c;
}

// The RAT layer of the spec (rat.md section 1), written out for one sequence x [T, D].
std::vector<double> naive_rat_layer(const models::RatLayer& layer, const std::vector<double>& x, int64_t T) {
  const int64_t D = layer.n_heads * layer.head_dim, H = layer.n_heads, d = layer.head_dim, L = layer.chunk;
  const std::vector<double> z = project(x, layer.z_proj.weight), v = project(x, layer.v_proj.weight),
                            g = project(x, layer.g_proj.weight, layer.gate_bias.to_f64_vector()),
                            q = project(x, layer.q_proj.weight), k = project(x, layer.k_proj.weight);
  const int64_t G = layer.ngroups * d;
  // Head h reads group h % ngroups (torch's repeat); the scan runs per channel of D.
  std::vector<double> qh(static_cast<size_t>(T * D)), kt(static_cast<size_t>(T * D)), vt(static_cast<size_t>(T * D));
  for (int64_t c = 0; c < D; ++c) {
    const int64_t src = ((c / d) % layer.ngroups) * d + c % d;
    double hk = 0, hv = 0;
    for (int64_t t = 0; t < T; ++t) {
      if (t % L == 0) hk = hv = 0;  // a chunk starts: the state resets
      const double gate = sigmoid_of(g[t * D + c]);
      hk = gate * hk + (1 - gate) * k[t * G + src];
      hv = gate * hv + (1 - gate) * v[t * D + c];
      kt[t * D + c] = hk;
      vt[t * D + c] = hv;
      qh[t * D + c] = q[t * G + src];
    }
  }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      rotate(&qh[t * D + h * d], d, t / L, layer.rope_theta);
      rotate(&kt[t * D + h * d], d, t / L, layer.rope_theta);
    }
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> gated(static_cast<size_t>(T * D));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      // Keys: the last token of every chunk before t's (strictly), then t's own running key.
      std::vector<int64_t> keys;
      for (int64_t j = 0; j < t / L; ++j) keys.push_back((j + 1) * L - 1);
      keys.push_back(t);
      std::vector<double> logits;
      double top = -INFINITY;
      for (int64_t s : keys) {
        double dot = 0;
        for (int64_t i = 0; i < d; ++i) dot += qh[t * D + h * d + i] * kt[s * D + h * d + i];
        logits.push_back(scale * dot);
        top = std::max(top, logits.back());
      }
      double norm = 0;
      for (double& l : logits) norm += (l = std::exp(l - top));
      for (int64_t i = 0; i < d; ++i) {
        double y = 0;
        for (size_t n = 0; n < keys.size(); ++n) y += logits[n] / norm * vt[keys[n] * D + h * d + i];
        gated[t * D + h * d + i] = sigmoid_of(z[t * D + h * d + i]) * y;
      }
    }
  return project(gated, layer.out_proj.weight);
}

models::Rat& as_rat(std::unique_ptr<LanguageModel>& model) {
  auto* rat = dynamic_cast<models::Rat*>(model.get());
  REQUIRE(rat);
  return *rat;
}

}  // namespace

TEST_CASE(
    "rat: the RAT layer equals the spec's formulas written out (groups, gate bias, scan, chunk RoPE, summaries; f64)") {
  // Chunks of 3 over 8 tokens (a partial last chunk); 4 heads sharing 2 q/k groups and 2 heads with
  // one group; chunk 1 (attention over every earlier token) and a chunk longer than the sequence
  // (the gated RNN alone).
  for (auto [chunk, ngroups, heads] :
       {std::tuple<int64_t, int64_t, int64_t>{3, 2, 4}, {3, 1, 2}, {1, 2, 2}, {16, 1, 2}}) {
    CAPTURE(chunk);
    CAPTURE(ngroups);
    CAPTURE(heads);
    ModelConfig c = rat_config(chunk, ngroups, heads);
    Generator gen(3);
    models::RatLayer layer(c, models::RatOptions::from(c), gen);
    const int64_t T = 8;
    Tensor x = Tensor::randn({1, T, 8}, gen, 1.0, DType::f64);
    const std::vector<double> want = naive_rat_layer(layer, x.to_f64_vector(), T);
    CHECK(rel_error(layer.forward(x).to_f64_vector(), want) < 1e-12);
  }
}

TEST_CASE("rat: the gate bias starts at log U(1, L - 1), zero for chunks of 2 or less") {
  for (int64_t chunk : {1, 2, 16}) {
    CAPTURE(chunk);
    ModelConfig c = rat_config(chunk, 1);
    c.d_model = 64;
    Generator gen(4);
    models::RatLayer layer(c, models::RatOptions::from(c), gen);
    const std::vector<double> b = layer.gate_bias.to_f64_vector();
    double lo = INFINITY, hi = -INFINITY;
    for (double v : b) lo = std::min(lo, v), hi = std::max(hi, v);
    if (chunk <= 2) {
      CHECK(lo == 0.0);
      CHECK(hi == 0.0);
    } else {
      CHECK(lo >= 0.0);
      CHECK(hi <= std::log(15.0));
      CHECK(hi - lo > 1.0);  // spread over the range, not one value
    }
  }
}

TEST_CASE("rat: decoding with the running state and the summary cache gives the full forward's logits (f64)") {
  // RAT at layer 0 (chunks of 3) and a window of 2 keys back at layer 1.
  ModelConfig c = rat_config(3, 1);
  Generator gen(5);
  auto model = build_model(c, gen);
  models::Rat& rat = as_rat(model);
  const std::vector<int32_t> seq = {1, 5, 2, 7, 3, 0, 10, 4, 9, 6, 2};
  NoGradGuard no_grad;
  const auto full = model->forward(Tensor::from_vector<int32_t>(seq, {1, 11})).logits.to_f64_vector();
  models::RatDecodeState state;
  std::vector<double> stepped;
  for (int32_t id : seq) {
    auto v = rat.forward_with_state(Tensor::from_vector<int32_t>({id}, {1, 1}), state).to_f64_vector();
    stepped.insert(stepped.end(), v.begin(), v.end());
  }
  CHECK(rel_error(stepped, full) < 1e-10);
  CHECK(state.position == 11);
  // One key and one value per finished chunk (11 tokens: 3 chunks of 3), the window's 2 keys.
  CHECK(state.layers[0].key_summaries.size(1) == 3);
  CHECK(state.layers[0].value_summaries.size(1) == 3);
  CHECK(state.layers[1].window.keys.size(1) == 2);
  // Prompts that end inside a chunk and on a chunk end, then single tokens and a pair.
  for (int64_t prompt : {4, 6}) {
    CAPTURE(prompt);
    models::RatDecodeState st;
    std::vector<int32_t> head(seq.begin(), seq.begin() + prompt);
    std::vector<double> mixed =
        rat.forward_with_state(Tensor::from_vector<int32_t>(head, {1, prompt}), st).to_f64_vector();
    for (size_t i = static_cast<size_t>(prompt); i < seq.size();) {
      const size_t n = std::min<size_t>(i % 2 ? 1 : 2, seq.size() - i);
      std::vector<int32_t> part(seq.begin() + static_cast<int64_t>(i), seq.begin() + static_cast<int64_t>(i + n));
      auto v =
          rat.forward_with_state(Tensor::from_vector<int32_t>(part, {1, static_cast<int64_t>(n)}), st).to_f64_vector();
      mixed.insert(mixed.end(), v.begin(), v.end());
      i += n;
    }
    CHECK(rel_error(mixed, full) < 1e-10);
  }
}

TEST_CASE("rat: decoding refuses to record gradients") {
  Generator gen(6);
  auto model = build_model(rat_config(3, 1), gen);
  models::RatDecodeState state;
  CHECK_THROWS_WITH_AS(as_rat(model).forward_with_state(Tensor::from_vector<int32_t>({1}, {1, 1}), state),
                       "rat: forward_with_state decodes without gradients (use NoGradGuard)", Error);
}

TEST_CASE("rat: the family's checks name the key and the numbers") {
  const FamilySpec* rat = find_family("rat");
  REQUIRE(rat);
  ModelConfig c = rat_config(16, 2, 4);
  CHECK(rat->check(c, 512, 1) == "");
  CHECK(rat->check(c, 512, 2) == "");  // 256 tokens per rank: 16 chunks each
  CHECK(rat->check(c, 96, 4) ==
        "chunk = 16: under parallel.sp = 4 each rank holds whole chunks, but data.seq_len / sp = 24 tokens is not a "
        "multiple of it");
  c.options.set("ngroups", int64_t{3});
  CHECK(rat->check(c, 512, 1) == "ngroups = 3 must divide model.n_heads = 4");
  c.options.set("ngroups", int64_t{2});
  c.options.set("window_layers", IntList{1, 2});
  CHECK(rat->check(c, 512, 1) == "window_layers: layer 2 is out of range (model.n_layers = 2: layers 0 to 1)");
}

TEST_CASE("rat: FLOPs per token count the summaries each query sees, which grow as T / L") {
  using flops::Pass;
  ModelConfig c = rat_config(4, 1);
  c.options.set("window_layers", IntList{});
  Generator gen(7);
  auto model = build_model(c, gen);
  const int64_t D = 8, F = 12, V = 11, H = 2, d = 4, G = 4;
  const double per_layer = 2 * flops::linear(1, D, F, Pass::forward) +
                           flops::linear(1, D, 3 * D + 2 * G, Pass::forward) + flops::linear(1, D, D, Pass::forward);
  for (int64_t T : {16, 64}) {
    CAPTURE(T);
    // A query of chunk c sees c summaries and its own key: sum over the T / 4 chunks of 4 (c + 1).
    double pairs = 0;
    for (int64_t t = 0; t < T; ++t) pairs += static_cast<double>(t / 4 + 1);
    const double attention = pairs * H * (2.0 * d + 2.0 * d) / static_cast<double>(T);
    CHECK(model->train_flops_per_token(T) ==
          doctest::Approx(3 * (flops::linear(1, D, V, Pass::forward) + 2 * (per_layer + attention))));
  }
}
