#pragma once
// The small training run the training tests (CPU) and the device training tests share: a corpus
// from a tiny grammar and a two-layer recipe over it that trains in seconds.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <utility>

#include "framework/io/checkpoint_dir.h"
#include "base/random.h"
#include "framework/train/trainer.h"

namespace eat::test {

// Sentences from a tiny grammar: learnable structure well below the unigram entropy.
inline std::string synthetic_text(int sentences) {
  const char* subjects[] = {"the king", "a shepherd", "the people", "his son", "the prophet"};
  const char* verbs[] = {"went up to", "spake unto", "looked upon", "came into", "blessed"};
  const char* objects[] = {"the city.", "the mountain.", "the house of the lord.", "the river.", "all israel."};
  Generator gen(99);
  std::string s;
  for (int i = 0; i < sentences; ++i) {
    s += subjects[gen.next_u64() % 5];
    s += " ";
    s += verbs[gen.next_u64() % 5];
    s += " ";
    s += objects[gen.next_u64() % 5];
    s += (i % 4 == 3) ? "\n" : " ";
  }
  return s;
}

// Two layers of d_model 32 on seq_len 32, MLP width 64, of any registered family.
inline std::string recipe_text(const std::string& dir, const std::string& family = "transformer") {
  return R"(
[run]
name = "tiny"
out_dir = ")" + dir + R"("
seed = 5
[model]
family = ")" + family + R"("
d_model = 32
n_layers = 2
n_heads = 2
[model.)" + family + R"(]
mlp_hidden = 64
[data]
train = ")" + dir + R"(/data/train.tok"
val = ")" + dir + R"(/data/val.tok"
seq_len = 32
[train]
steps = 12
global_batch = 4
micro_batch = 2
[optimizer]
lr = 3e-3
[schedule]
warmup = 2
[checkpoint]
every = 4
keep_last = 5
[eval]
every = 4
max_tokens = 2048
[log]
every = 4
peak_gflops = 100
)";
}

inline TrainOptions quiet(const std::string& resume = "never") {
  TrainOptions o;
  o.quiet = true;
  o.resume = resume;
  return o;
}

// Trains a recipe that checkpoints at 4, 8 and 12, removes the step-12 checkpoint (leaving the run
// directory as a run stopped after step 8 leaves it) and resumes it. Returns the first run and
// the resumed one, whose 4 losses must equal the first run's last 4.
inline std::pair<TrainResult, TrainResult> train_then_resume_from_step_8(const Recipe& recipe) {
  TrainResult whole = train(recipe, quiet());
  auto cks = list_checkpoints(whole.run_dir);
  REQUIRE(cks.size() == 3);
  std::filesystem::remove_all(cks.back().path);
  TrainResult resumed = train(recipe, quiet("auto"));
  CHECK(resumed.start_step == 8);
  CHECK(resumed.final_step == 12);
  REQUIRE(resumed.losses.size() == 4);
  return {whole, resumed};
}

}  // namespace eat::test
