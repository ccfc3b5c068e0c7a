// What every registered family must satisfy, looping over the registry (models/registry.cpp): a
// new family is covered by adding its manifest, with no test to edit.
#include <doctest/doctest.h>

#include "framework/model.h"
#include "framework/train/loss_terms.h"
#include "framework/nn/sequence_mixer.h"
#include "framework/ops.h"
#include "gradcheck.h"
#include "tiny_model.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("families: every manifest is complete: documented keys, valid choices and tiny options, mlp_hidden") {
  for (const std::string& family : family_names()) {
    CAPTURE(family);
    const FamilySpec& spec = *find_family(family);
    bool has_mlp_hidden = false;
    for (const OptionSpec& o : spec.options) {
      CAPTURE(o.name);
      CHECK(!o.doc.empty());
      has_mlp_hidden |= o.name == "mlp_hidden" && std::holds_alternative<int64_t>(o.default_value);
      if (o.choices.empty()) continue;
      // Choices belong to string keys, and the default is one of them.
      REQUIRE(std::holds_alternative<std::string>(o.default_value));
      bool default_allowed = false;
      for (const OptionChoice& c : o.choices) default_allowed |= c.value == std::get<std::string>(o.default_value);
      CHECK(default_allowed);
    }
    // The one MLP-width key every family shares (tests/training/tiny_run.h sets it for any family).
    CHECK(has_mlp_hidden);
    for (const auto& [name, value] : spec.tiny_test_options) {
      CAPTURE(name);
      bool declared = false;
      for (const OptionSpec& o : spec.options) declared |= o.name == name && o.default_value.index() == value.index();
      CHECK(declared);
    }
    for (const auto& [old_name, new_name] : spec.renamed_options) {
      bool current = false;
      for (const OptionSpec& o : spec.options) current |= o.name == new_name;
      CHECK(current);
    }
  }
}

TEST_CASE("families: every family's tiny model has exact gradients, parameter by parameter (f64)") {
  for (const std::string& family : family_names()) {
    CAPTURE(family);
    Generator gen(5);
    auto model = build_model(tiny_model_config(family, DType::f64), gen);
    Tensor ids = Tensor::from_vector<int32_t>({1, 5, 2, 7, 3, 0, 10, 4, 4, 6}, {2, 5});
    Tensor targets = Tensor::from_vector<int32_t>({5, 2, 7, 3, 0, 10, 4, 4, 6, 1}, {10});
    // The objective the trainer takes: the cross-entropy plus the family's weighted aux terms.
    auto loss = [&](const std::vector<Tensor>&) {
      ModelOutput out = model->forward(ids);
      return add_aux_terms(cross_entropy(reshape(out.logits, {10, 11}), targets), out.aux);
    };
    // One parameter at a time: a wrong gradient names its parameter. The checker perturbs the
    // model's own tensor in place; the tolerances are the per-family checks' (central differences, step 1e-6).
    for (const Parameter& p : model->parameters()) {
      CAPTURE(p.name);
      CHECK(gradcheck(family + " " + p.name, loss, {p.tensor}, {1e-6, 1e-5, 1e-9}) <= 1.0);
    }
  }
}

TEST_CASE("families: set_sequence_parallel labels every sequence mixer with its module path") {
  auto single = make_single_communicator();
  for (const std::string& family : family_names()) {
    CAPTURE(family);
    Generator gen(6);
    auto model = build_model(tiny_model_config(family, DType::f32), gen);
    model->set_sequence_parallel(single.get());  // a group of one: whole sequences, labels set
    int mixers = 0;
    for (const auto& [path, module] : model->descendants())
      if (const auto* mixer = dynamic_cast<const SequenceMixer*>(module)) {
        CHECK(mixer->comm_label() == path);
        CHECK(!mixer->sequence_split());
        ++mixers;
      }
    // A family that declares sequence parallelism has mixers to split (one per layer at least).
    if (find_family(family)->sequence_parallel) CHECK(mixers >= 2);
  }
}
