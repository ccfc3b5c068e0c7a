#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "base/error.h"
#include "data/corpus.h"
#include "framework/config/recipe.h"
#include "framework/storage.h"
#include "framework/train/memory_estimate.h"
#include "models/tiny_model.h"
#include "temp_dir.h"
#include "tiny_run.h"

using namespace eat;

TEST_CASE("memory estimate: the parameter floor holds for every registered family") {
  for (const std::string& family : family_names()) {
    CAPTURE(family);
    Generator gen(1);
    const ModelConfig c = test::tiny_model_config(family, DType::f32);
    const double count = static_cast<double>(build_model(c, gen)->num_parameters());
    CHECK(parameter_floor(c) <= count);
    CHECK(parameter_floor(c) == 11.0 * 8 + 2 * 2.0 * 8 * 8);
  }
}

TEST_CASE("memory estimate: parts and the refusal naming the size keys and the numbers") {
  const Recipe recipe = parse_recipe(test::recipe_text("/tmp/none"), "r.toml");
  ModelConfig m = recipe.model;  // d_model 32, 2 layers, vocabulary 257
  MemoryEstimate e = estimate_training_memory(m, 1000, 2, 32, Device::cpu);
  CHECK(e.parameters == 4000);
  CHECK(e.gradients == 4000);
  CHECK(e.moments == 8000);
  CHECK(e.activations == 2 * 32 * (8 * 2 * 32 + 2 * 257) * 4.0);
  m.dtype = DType::f64;
  CHECK(estimate_training_memory(m, 1000, 2, 32, Device::cpu).moments == 16000);
  m.dtype = DType::f32;
  m.compute_dtype = DType::bf16;
  const MemoryEstimate gpu = estimate_training_memory(m, 1000, 2, 32, Device::cuda);
  CHECK(gpu.moments == 8000);                             // f32 moments on the device
  CHECK(gpu.activations == e.activations / 2);            // bf16 activations

  const double total = e.total();
  CHECK_NOTHROW(check_training_memory(recipe, e, total, "the host's MemAvailable", false, false));
  CHECK_NOTHROW(check_training_memory(recipe, e, -1, "the host's MemAvailable", false, false));  // unknown
  CHECK_NOTHROW(check_training_memory(recipe, e, total - 4000, "the host's MemAvailable", false, true));  // resident
  CHECK_THROWS_WITH_AS(check_training_memory(recipe, e, total - 4001, "the host's MemAvailable", false, true),
                       doctest::Contains("parameters 3.73e-06 GiB already allocated"), Error);
  MemoryEstimate big;
  big.parameters = big.gradients = 4.0 * (1ull << 40);
  big.moments = 8.0 * (1ull << 40);
  big.activations = 1.0 * (1ull << 30);
  CHECK_THROWS_WITH_AS(
      check_training_memory(recipe, big, 8.0 * (1ull << 30), "the host's MemAvailable", true, false),
      "r.toml: model.d_model = 32, model.n_layers = 2, model.vocab_size = 257 need at least 1.64e+04 GiB per rank to "
      "train (parameters 4.1e+03 GiB, gradients 4.1e+03 GiB, AdamW moments 8.19e+03 GiB, activations of one micro-batch "
      "about 1 GiB), but the host's MemAvailable is 8 GiB; make the model, train.micro_batch or data.seq_len smaller",
      Error);
}

TEST_CASE("memory estimate: the host's available memory is read") {
  const int64_t host = available_memory(Device::cpu);
  CHECK(host > 0);
  if (cuda_available()) CHECK(available_memory(Device::cuda) > 0);
  else CHECK(available_memory(Device::cuda) == -1);
}

TEST_CASE("memory estimate: training refuses an absurd d_model before building the model") {
  test::TempDir dir("memory");
  data::tokenize_texts({test::synthetic_text(200)}, dir / "data", "byte", 0.1);
  Recipe recipe = parse_recipe(test::recipe_text(dir.str()), "r.toml", {"model.d_model=1048576"});
  CHECK_THROWS_WITH_AS(train(recipe, test::quiet()), doctest::Contains("model.d_model = 1048576, model.n_layers = 2"), Error);
  CHECK_THROWS_WITH_AS(train(recipe, test::quiet()), doctest::Contains("need at least 6.55e+04 GiB per rank"), Error);
}
