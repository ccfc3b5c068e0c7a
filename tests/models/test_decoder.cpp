// Decoding through LanguageModel::decoder(), for every registered family: token by token it gives
// the full forward's logits, greedy generation follows the full forward's argmax, and the
// decoding state grows as the family says (a window's keys stay bounded, a linear state constant).
#include <doctest/doctest.h>

#include <algorithm>

#include "framework/autograd.h"
#include "framework/decode/generate.h"
#include "framework/model.h"
#include "rel_error.h"
#include "tiny_model.h"

using namespace eat;
using namespace eat::test;

namespace {

Tensor ids_tensor(const std::vector<int32_t>& ids) {
  return Tensor::from_vector<int32_t>(ids, {1, static_cast<int64_t>(ids.size())});
}

// The lowest id of the largest logit in row t of [T, V] logits.
int32_t row_argmax(const std::vector<double>& logits, int64_t t, int64_t V) {
  auto row = logits.begin() + t * V;
  return static_cast<int32_t>(std::max_element(row, row + V) - row);
}

// state_bytes after each step of decoding `steps` tokens one at a time.
std::vector<int64_t> state_bytes_per_step(LanguageModel& model, int64_t steps) {
  auto decoder = model.decoder();
  std::vector<int64_t> bytes;
  for (int64_t i = 0; i < steps; ++i) {
    decoder->step(ids_tensor({static_cast<int32_t>(i % 11)}));
    bytes.push_back(decoder->state_bytes());
  }
  return bytes;
}

}  // namespace

TEST_CASE("decoder: greedy decoding token by token follows the full forward, logits and argmax, every family (f64)") {
  const std::vector<int32_t> prompt = {1, 5, 2};
  const int64_t new_tokens = 13, V = 11;  // 16 tokens: past the tiny windows and several RAT chunks
  for (const std::string& family : family_names()) {
    CAPTURE(family);
    Generator gen(21);
    auto model = build_model(tiny_model_config(family, DType::f64), gen);
    auto decoder = model->decoder();
    REQUIRE(decoder != nullptr);
    // The prompt in one step, then each greedy token.
    std::vector<int32_t> seq = prompt;
    std::vector<double> stepped = decoder->step(ids_tensor(prompt)).to_f64_vector();
    for (int64_t i = 0; i < new_tokens; ++i) {
      const int64_t last = static_cast<int64_t>(stepped.size()) / V - 1;
      seq.push_back(row_argmax(stepped, last, V));
      auto v = decoder->step(ids_tensor({seq.back()})).to_f64_vector();
      stepped.insert(stepped.end(), v.begin(), v.end());
    }
    // Decoding runs without gradients even when the caller has them on.
    CHECK(autograd::grad_enabled());
    std::vector<double> full;
    {
      NoGradGuard no_grad;
      full = model->forward(ids_tensor(seq)).logits.to_f64_vector();
    }
    CHECK(rel_error(stepped, full) < 1e-10);
    for (size_t t = prompt.size(); t < seq.size(); ++t) {
      CAPTURE(t);
      CHECK(seq[t] == row_argmax(full, static_cast<int64_t>(t) - 1, V));
    }
    // generate() at temperature 0 emits the same tokens.
    GenerateOptions options;
    options.max_new_tokens = new_tokens;
    options.sampling.temperature = 0;
    std::vector<int32_t> emitted;
    GenerateStats stats = generate(*model, prompt, options, [&](int32_t id) { emitted.push_back(id); });
    CHECK(emitted == std::vector<int32_t>(seq.begin() + 3, seq.end()));
    CHECK(stats.prompt_tokens == 3);
    CHECK(stats.new_tokens == new_tokens);
    CHECK(!stats.stopped);
    CHECK(stats.state_bytes > 0);
  }
}

TEST_CASE("decoder: generation ends before the stop id, emitting nothing of it") {
  Generator gen(21);
  auto model = build_model(tiny_model_config("transformer", DType::f64), gen);
  GenerateOptions options;
  options.sampling.temperature = 0;
  options.max_new_tokens = 5;
  std::vector<int32_t> free_run;
  generate(*model, {1, 5, 2}, options, [&](int32_t id) { free_run.push_back(id); });
  REQUIRE(free_run.size() == 5);
  // Stopping at the third greedy token: the first two come out, then nothing.
  options.stop_id = free_run[2];
  const auto first = std::find(free_run.begin(), free_run.end(), free_run[2]) - free_run.begin();
  std::vector<int32_t> stopped_run;
  GenerateStats stats = generate(*model, {1, 5, 2}, options, [&](int32_t id) { stopped_run.push_back(id); });
  CHECK(stats.stopped);
  CHECK(stopped_run == std::vector<int32_t>(free_run.begin(), free_run.begin() + first));
  CHECK_THROWS_WITH_AS(generate(*model, {}, options, [](int32_t) {}), "generate: the prompt is empty", Error);
}

TEST_CASE("decoder: a prompt is refused when empty or with a token outside the model's vocabulary") {
  data::ByteTokenizer bytes;
  CHECK(encode_prompt(bytes, "\x01\x0a", 11) == std::vector<int32_t>{1, 10});
  CHECK_THROWS_WITH_AS(encode_prompt(bytes, "", 257), "generate: the prompt is empty; give the text to continue", Error);
  CHECK_THROWS_WITH_AS(encode_prompt(bytes, "\x01k", 11),
                       "generate: the prompt's token 107 (byte tokenizer) is outside the model's vocabulary of 11 ids", Error);
}

TEST_CASE("decoder: a sliding window's keys stay bounded past the window; a full cache grows by one token a step") {
  ModelConfig c = tiny_model_config("transformer", DType::f64);
  c.options.set("window", int64_t{3});
  Generator gen(22);
  auto windowed = state_bytes_per_step(*build_model(c, gen), 12);
  // Keys and values of the last 3 tokens in both layers, once 3 tokens are in.
  for (size_t i = 0; i < windowed.size(); ++i) CHECK(windowed[i] == static_cast<int64_t>(std::min<size_t>(i + 1, 3)) * 2 * 2 * 8 * 8);
  c.options.set("window", int64_t{-1});
  auto full = state_bytes_per_step(*build_model(c, gen), 12);
  // 2 layers x (keys + values) x 8 numbers x 8 bytes per token.
  for (size_t i = 0; i < full.size(); ++i) CHECK(full[i] == static_cast<int64_t>(i + 1) * 2 * 2 * 8 * 8);
}

TEST_CASE("decoder: a linear-attention state is the same size at every length (transnormer, based's Taylor layers)") {
  Generator gen(23);
  auto tnl = state_bytes_per_step(*build_model(tiny_model_config("transnormer", DType::f64), gen), 10);
  // One [1, H, d, d] state per layer: 2 x 2 x 4 x 4 numbers of 8 bytes.
  for (int64_t b : tnl) CHECK(b == 2 * 2 * 4 * 4 * 8);
  ModelConfig c = tiny_model_config("based", DType::f64);
  c.options.set("taylor_layers", IntList{0, 1});
  c.options.set("window_layers", IntList{});
  auto based = state_bytes_per_step(*build_model(c, gen), 10);
  for (int64_t b : based) CHECK(b == based.front());
}
