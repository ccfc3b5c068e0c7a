#pragma once
// A test-only model with an aux loss term, and a small run of it: an embedding and a linear head
// in f64 whose one aux term, when given a weight, is the mean of the squared logits. The recipe is
// tiny_run.h's (its family stands aside: the run trains this model instead).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/corpus.h"
#include "framework/nn/layers.h"
#include "framework/train/training_run.h"
#include "temp_dir.h"
#include "tiny_run.h"

namespace eat::test {

class SquaredLogitsModel : public LanguageModel {
 public:
  SquaredLogitsModel(int64_t vocab, std::optional<double> aux_weight)
      : gen_(3),
        embed_(add_module<Embedding>("embed", vocab, 8, gen_, 0.5, DType::f64)),
        head_(add_module<Linear>("head", 8, vocab, false, gen_, 0.5, DType::f64)),
        aux_weight_(aux_weight) {}
  ModelOutput forward(const Tensor& ids) override {
    Tensor logits = head_.forward(embed_.forward(ids));
    if (!aux_weight_) return {logits};
    return {logits, {{"logit_sq", mean(mul(logits, logits)), *aux_weight_}}};
  }
  double train_flops_per_token(int64_t) const override { return 6.0 * static_cast<double>(num_parameters()); }

 private:
  Generator gen_;
  Embedding& embed_;
  Linear& head_;
  std::optional<double> aux_weight_;
};

// Runs of SquaredLogitsModel over the synthetic corpus, in f64: 4 sequences of 32 tokens a step,
// micro-batches of 2 unless a setting says otherwise.
struct SquaredLogitsRuns {
  TempDir dir{"aux"};
  SquaredLogitsRuns() { data::tokenize_texts({synthetic_text(1500)}, dir / "data", "byte", 0.1); }
  std::unique_ptr<TrainingRun> run(std::optional<double> aux_weight, std::vector<std::string> sets = {},
                                   TrainOptions options = quiet()) const {
    sets.push_back("train.precision=f64");
    Recipe r = parse_recipe(recipe_text(dir.str()), "test.toml", sets);
    return std::make_unique<TrainingRun>(r, options, std::make_unique<SquaredLogitsModel>(r.model.vocab_size, aux_weight));
  }
};

}  // namespace eat::test
