// What is particular to the Titans family: the memory layer against the spec's per-token rule
// written out (projections, convs, L2 norms, gates, the memory learned token by token with its
// gradients held at the chunk start, the output gate), decoding of every variant and memory
// against the full forward, causality, whole-model gradients of the variants the registry-wide
// tests do not build, the family's checks and its FLOPs.
#include <doctest/doctest.h>

#include <cmath>

#include "base/error.h"
#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops.h"
#include "gradcheck.h"
#include "models/titans.h"
#include "naive_memory.h"
#include "rel_error.h"
#include "titans_test_config.h"

using namespace eat;
using namespace eat::test;

namespace {

// The memory layer of titans.md section 1 (with its own output), written out for one sequence
// x [T, D]: per head, the memory M learned token by token, every gradient of a chunk taken at the
// chunk-start weights, and read after the token's update.
std::vector<double> naive_memory_layer(const models::NeuralMemory& layer, double max_lr, const std::vector<double>& x,
                                       int64_t T) {
  const int64_t H = layer.n_heads, d = layer.head_dim, D = H * d, b = layer.options.chunk;
  const NaiveMemoryInputs in = naive_memory_inputs(layer, x, T);
  std::vector<double> y(static_cast<size_t>(T * D));
  for (int64_t h = 0; h < H; ++h) {
    NaiveHeadMemory memory = NaiveHeadMemory::start(layer, h), chunk_start;
    for (int64_t t = 0; t < T; ++t) {
      if (t % b == 0) chunk_start = memory;
      const int64_t at = t * D + h * d, gate = t * H + h;
      memory.update(chunk_start.inner_gradient(&in.k[at], &in.v[at]), max_lr, in.theta[gate], in.eta[gate],
                    in.alpha[gate]);
      memory.read(&in.q[at], &y[at]);  // the read with the weights after token t
    }
  }
  // RMSNorm over each head's d outputs, SiLU(x W_g) gate, o_proj.
  rms_norm_rows(y, layer.head_norm->weight, layer.head_norm->eps);
  const std::vector<double> gate = project(x, layer.gate_proj->weight);
  for (size_t i = 0; i < y.size(); ++i) y[i] *= silu_of(gate[i]);
  return project(y, layer.o_proj->weight);
}

models::Titans& as_titans(std::unique_ptr<LanguageModel>& model) {
  auto* titans = dynamic_cast<models::Titans*>(model.get());
  REQUIRE(titans);
  return *titans;
}

const std::vector<std::string> kVariants = {"lmm", "mal", "mag", "mac"};
const std::vector<std::string> kMemories = {"linear", "mlp"};

}  // namespace

TEST_CASE("titans: the memory layer equals the spec's per-token rule written out (linear and MLP, chunk 1 and 3; f64)") {
  for (const std::string& memory : kMemories)
    for (int64_t chunk : {1, 3}) {
      CAPTURE(memory);
      CAPTURE(chunk);
      ModelConfig c = titans_config("lmm", memory, chunk);
      const models::TitansOptions o = models::TitansOptions::from(c);
      Generator gen(3);
      models::NeuralMemory layer(c, o, true, gen);
      // A linear memory starts empty; start it somewhere so that the read of W0 is checked too.
      if (memory == "linear") layer.initial_state[0].copy_from(Tensor::randn({2, 4, 4}, gen, 0.5, DType::f64));
      const int64_t T = 8;
      Tensor x = Tensor::randn({1, T, 8}, gen, 1.0, DType::f64);
      const std::vector<double> want = naive_memory_layer(layer, o.memory_options.max_lr, x.to_f64_vector(), T);
      CHECK(rel_error(layer.forward(x).to_f64_vector(), want) < 1e-12);
    }
}

TEST_CASE("titans: decoding carries the memory, its unfinished chunk, the conv tails and the window (every variant; f64)") {
  const std::vector<int32_t> seq = {1, 5, 2, 7, 3, 0, 10, 4, 9, 6, 2};
  for (const std::string& variant : kVariants)
    for (const std::string& memory : kMemories) {
      CAPTURE(variant);
      CAPTURE(memory);
      Generator gen(5);
      auto model = build_model(titans_config(variant, memory, 3), gen);
      models::Titans& titans = as_titans(model);
      NoGradGuard no_grad;
      const auto full = model->forward(Tensor::from_vector<int32_t>(seq, {1, 11})).logits.to_f64_vector();
      // One token at a time, and a prompt of 4 or 6 (inside a chunk, on a chunk end) then pairs.
      for (int64_t prompt : {1, 4, 6}) {
        CAPTURE(prompt);
        models::TitansDecodeState state;
        std::vector<double> stepped;
        for (size_t i = 0; i < seq.size();) {
          const size_t n = i == 0 ? static_cast<size_t>(prompt) : std::min<size_t>(prompt == 1 ? 1 : 2, seq.size() - i);
          std::vector<int32_t> part(seq.begin() + static_cast<int64_t>(i), seq.begin() + static_cast<int64_t>(i + n));
          auto v = titans.forward_with_state(Tensor::from_vector<int32_t>(part, {1, static_cast<int64_t>(n)}), state)
                       .to_f64_vector();
          stepped.insert(stepped.end(), v.begin(), v.end());
          i += n;
        }
        CHECK(rel_error(stepped, full) < 1e-10);
        // 11 tokens in chunks of 3: the last 2 wait for their chunk to finish; the convs keep 3
        // inputs; a window of 2 keeps 2 keys. MAC: in segments of 6, the last 5 inputs wait.
        const models::TitansLayerState& layer = state.layers[0];
        if (variant == "mac") {
          CHECK(layer.segments.pending.size(1) == 5);
          CHECK(layer.segments.tails.q.size(1) == 3);
          CHECK(layer.segments.retrieval_tail.size(1) == 3);
          continue;
        }
        CHECK(layer.memory.q.size(1) == 2);
        CHECK(layer.memory.tails.q.size(1) == 3);
        if (variant != "lmm") CHECK(layer.window.keys.size(1) == 2);
      }
    }
}

TEST_CASE("titans: no output depends on a later token (every variant and memory; f64)") {
  const std::vector<int32_t> seq = {1, 5, 2, 7, 3, 0, 10, 4};
  for (const std::string& variant : kVariants)
    for (const std::string& memory : kMemories) {
      CAPTURE(variant);
      CAPTURE(memory);
      Generator gen(7);
      auto model = build_model(titans_config(variant, memory, 3), gen);
      NoGradGuard no_grad;
      const auto base = model->forward(Tensor::from_vector<int32_t>(seq, {1, 8})).logits.to_f64_vector();
      for (int64_t t = 1; t < 8; ++t) {
        CAPTURE(t);
        std::vector<int32_t> changed = seq;
        changed[static_cast<size_t>(t)] = (changed[static_cast<size_t>(t)] + 3) % 11;
        const auto out = model->forward(Tensor::from_vector<int32_t>(changed, {1, 8})).logits.to_f64_vector();
        const std::vector<double> before(base.begin(), base.begin() + t * 11), after(out.begin(), out.begin() + t * 11);
        CHECK(rel_error(after, before) < 1e-14);
        // And the changed token itself does change its own logits.
        CHECK(rel_error(std::vector<double>(out.begin() + t * 11, out.begin() + (t + 1) * 11),
                        std::vector<double>(base.begin() + t * 11, base.begin() + (t + 1) * 11)) > 1e-6);
      }
    }
}

TEST_CASE("titans: every variant's tiny model has exact gradients (the ones test_families does not build; f64)") {
  // test_families checks the manifest's tiny model (mag, MLP memory) parameter by parameter.
  for (const std::string& variant : kVariants)
    for (const std::string& memory : kMemories) {
      if (variant == "mag" && memory == "mlp") continue;
      CAPTURE(variant);
      CAPTURE(memory);
      Generator gen(9);
      auto model = build_model(titans_config(variant, memory, 2), gen);
      Tensor ids = Tensor::from_vector<int32_t>({1, 5, 2, 7, 3, 0, 10, 4, 4, 6}, {2, 5});
      Tensor targets = Tensor::from_vector<int32_t>({5, 2, 7, 3, 0, 10, 4, 4, 6, 1}, {10});
      auto loss = [&](const std::vector<Tensor>&) {
        return cross_entropy(reshape(model->forward(ids).logits, {10, 11}), targets);
      };
      std::vector<Tensor> params;
      for (const Parameter& p : model->parameters()) params.push_back(p.tensor);
      CHECK(gradcheck("titans " + variant + " " + memory, loss, params, {1e-6, 1e-5, 1e-9}) <= 1.0);
    }
}

TEST_CASE("titans: the mean inner loss is the sum's with theta divided by the value width") {
  ModelConfig c = titans_config("lmm", "mlp", 16);
  c.options.set("max_lr", 0.4);
  c.options.set("inner_loss", std::string("sum"));
  CHECK(models::TitansOptions::from(c).memory_options.max_lr == 0.4);
  c.options.set("inner_loss", std::string("mean"));
  CHECK(models::TitansOptions::from(c).memory_options.max_lr == 0.1);  // heads of 4
}

TEST_CASE("titans: the family's checks name the key and the numbers") {
  const FamilySpec* titans = find_family("titans");
  REQUIRE(titans);
  ModelConfig c = titans_config("mal", "linear", 16);
  CHECK(titans->check(c, 512, 1) == "");
  c.n_heads = 4;  // head dimension 2: even
  CHECK(titans->check(c, 512, 1) == "");
  c.d_model = 12;  // head dimension 3
  CHECK(titans->check(c, 512, 1) ==
        "variant = \"mal\" has attention with RoPE: the head dimension d_model / n_heads must be even");
  c.options.set("variant", std::string("lmm"));
  CHECK(titans->check(c, 512, 1) == "");  // no RoPE without attention
  c = titans_config("mac", "linear", 16);
  c.options.set("segment", int64_t{40});
  CHECK(titans->check(c, 512, 1) ==
        "variant = \"mac\" updates the memory segment by segment, so a memory chunk may not straddle two: segment = 40 "
        "is not a multiple of chunk = 16");
  c.options.set("segment", int64_t{48});
  CHECK(titans->check(c, 512, 1) == "");
  // max_lr, rope_theta and norm_eps carry their bounds in the manifest (checked at the key).
  for (const OptionSpec& o : titans->options)
    if (o.name == "max_lr" || o.name == "rope_theta") CHECK((o.float_floor == 0.0 && o.floor_excluded));
}

TEST_CASE("titans: FLOPs per token are constant in T for the memory alone, and grow only up to the window with it") {
  for (const std::string& variant : kVariants) {
    CAPTURE(variant);
    ModelConfig c = titans_config(variant, "mlp", 16);
    c.options.set("window", int64_t{64});
    Generator gen(11);
    auto model = build_model(c, gen);
    const double at_1k = model->train_flops_per_token(1024), at_64k = model->train_flops_per_token(65536);
    CHECK(at_1k > 0);
    // Only the window's share per token changes: it tends to window + 1 keys from below as T grows
    // (2 layers, forward and backward).
    using flops::Pass;
    auto window_share = [](int64_t T) {
      return flops::attention(1, T, 2, 4, 4, true, 64, Pass::forward) / static_cast<double>(T);
    };
    // MAC's attention is inside segments of 32: constant per token.
    const double growth = variant == "lmm" || variant == "mac" ? 0.0 : 2 * 3 * (window_share(65536) - window_share(1024));
    CHECK(growth >= 0);
    CHECK(at_64k - at_1k == doctest::Approx(growth).epsilon(1e-9));
  }
}

TEST_CASE("titans: every query of the attention sees the persistent pairs, however far past the window (mal, mag, mac; f64)") {
  const std::vector<int32_t> seq = {1, 5, 2, 7, 3, 0, 10, 4};
  for (const std::string& variant : {std::string("mal"), std::string("mag"), std::string("mac")}) {
    CAPTURE(variant);
    Generator gen(13);
    auto model = build_model(titans_config(variant, "linear", 3), gen);
    models::PersistentAttention* last = nullptr;  // the last layer's attention
    for (const auto& [path, module] : model->descendants())
      if (auto* a = dynamic_cast<models::PersistentAttention*>(module)) last = a;
    REQUIRE(last);
    models::PersistentAttention& attn = *last;
    NoGradGuard no_grad;
    const Tensor ids = Tensor::from_vector<int32_t>(seq, {1, 8});
    const auto base = model->forward(ids).logits.to_f64_vector();
    // Move one persistent value: every position's logits move (a window of 2 keys back would
    // otherwise hide everything before position t - 2).
    std::vector<double> values = attn.persistent_values.to_f64_vector();
    values[3] += 0.5;
    attn.persistent_values.copy_from(Tensor::from_vector<double>(values, attn.persistent_values.shape()));
    const auto moved = model->forward(ids).logits.to_f64_vector();
    for (int64_t t = 0; t < 8; ++t) {
      CAPTURE(t);
      CHECK(rel_error(std::vector<double>(moved.begin() + t * 11, moved.begin() + (t + 1) * 11),
                      std::vector<double>(base.begin() + t * 11, base.begin() + (t + 1) * 11)) > 1e-6);
    }
  }
}

TEST_CASE("titans: the decoding state does not grow with the length: it repeats with the chunk (lmm, mag) or segment (mac)") {
  for (const std::string& variant : {std::string("lmm"), std::string("mag"), std::string("mac")}) {
    CAPTURE(variant);
    Generator gen(15);
    auto model = build_model(titans_config(variant, "mlp", 3), gen);
    auto decoder = model->decoder();
    std::vector<int64_t> bytes;
    for (int32_t i = 0; i < 20; ++i) {
      decoder->step(Tensor::from_vector<int32_t>({i % 11}, {1, 1}));
      bytes.push_back(decoder->state_bytes());
    }
    // From the first finished chunk (segment) on (the window of 2 and the conv tails of 3 are full
    // by then), the unfinished chunk's (segment's) tokens are all that changes.
    const size_t period = variant == "mac" ? 6 : 3;
    for (size_t i = period - 1; i + period < bytes.size(); ++i) {
      CAPTURE(i);
      CHECK(bytes[i + period] == bytes[i]);
    }
    CHECK(bytes[period] > bytes[period - 1]);  // one token of a new chunk (segment) kept
  }
}
