// LanguageModel::set_sequence_parallel over a real group (2 or 4 ranks): every sequence mixer
// gets the group and its module path as the comm label, and a mixer's own refusal (the
// transformer's naive attention kernel has no sequence-parallel form) stops it with the reason.
#include <doctest/doctest.h>

#include "base/error.h"
#include "framework/model.h"
#include "framework/nn/sequence_mixer.h"
#include "models/tiny_model.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("sequence mixers: set_sequence_parallel splits every mixer of every SP family, labelled by path") {
  for (const std::string& family : family_names()) {
    if (!find_family(family)->sequence_parallel) continue;
    CAPTURE(family);
    Generator gen(1);
    auto model = build_model(tiny_model_config(family, DType::f64), gen);
    model->set_sequence_parallel(&world());
    int split = 0;
    for (const auto& [path, module] : model->descendants())
      if (const auto* mixer = dynamic_cast<const SequenceMixer*>(module)) {
        CHECK(mixer->sequence_split());
        CHECK(&mixer->sp_group() == &world());
        CHECK(mixer->comm_label() == path);
        ++split;
      }
    // One per layer of the tiny model; Titans' (MAG) has two: the attention and the memory.
    CHECK(split == (family == "titans" ? 4 : 2));
    CHECK(model->parameters().front().name == "embed.weight");
    model->set_sequence_parallel(nullptr);
    for (const auto& [path, module] : model->descendants())
      if (const auto* mixer = dynamic_cast<const SequenceMixer*>(module)) CHECK(!mixer->sequence_split());
  }
}

TEST_CASE("sequence mixers: a model of no SP family is refused") {
  // A model built outside the registry (no manifest declaring sequence parallelism).
  struct Bare : LanguageModel {
    ModelOutput forward(const Tensor& ids) override { return {ids}; }
    double train_flops_per_token(int64_t) const override { return 0; }
  } bare;
  CHECK_THROWS_WITH_AS(bare.set_sequence_parallel(&world()),
                       "this model does not support sequence parallelism (parallel.sp > 1)", Error);
  bare.set_sequence_parallel(nullptr);
}

TEST_CASE("sequence mixers: a mixer's refusal names the family, the reason and the module") {
  ModelConfig c = tiny_model_config("transformer", DType::f64);
  c.options.set("attention", std::string("naive"));
  Generator gen(2);
  auto model = build_model(c, gen);
  CHECK_THROWS_WITH_AS(model->set_sequence_parallel(&world()),
                       "transformer: sequence parallelism needs model.transformer.attention = \"tiled\" (layers.0.attn)",
                       Error);
  model->set_sequence_parallel(nullptr);  // whole sequences stay fine
}
