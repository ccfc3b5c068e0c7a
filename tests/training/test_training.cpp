// End-to-end training on a small synthetic corpus: the loss falls, resume is bit-exact,
// evaluation of a checkpoint matches the trainer's validation, bad checkpoints are refused.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <thread>
#include <filesystem>
#include <map>

#include "data/corpus.h"
#include "data/token_file.h"
#include "framework/autograd.h"
#include "base/error.h"
#include "framework/ops.h"
#include "framework/io/checkpoint_dir.h"
#include "framework/io/safetensors.h"
#include "framework/train/checkpoint.h"
#include "framework/train/evaluate.h"
#include "framework/train/trainer.h"
#include "temp_dir.h"
#include "tiny_run.h"

using namespace eat;
using eat::test::TempDir;
using eat::test::quiet;
using eat::test::recipe_text;
using eat::test::synthetic_text;

namespace {

double unigram_entropy_nats(const data::TokenFile& f) {
  std::map<int32_t, double> counts;
  for (int64_t i = 0; i < f.size(); ++i) counts[f[i]] += 1;
  double h = 0;
  for (const auto& [id, c] : counts) {
    double p = c / static_cast<double>(f.size());
    h -= p * std::log(p);
  }
  return h;
}

struct Fixture {
  TempDir dir{"train"};
  Fixture() { data::tokenize_texts({synthetic_text(1500)}, dir / "data", "byte", 0.1); }
  Recipe recipe(std::vector<std::string> sets = {}) const { return parse_recipe(recipe_text(dir.str()), "test.toml", sets); }
};


std::vector<double> weights_of(const std::string& checkpoint) {
  std::vector<double> all;
  for (const auto& [name, t] : load_safetensors(checkpoint + "/model.safetensors").tensors) {
    auto v = t.to_f64_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

}  // namespace

TEST_CASE("training: the loss falls well below the unigram entropy") {
  Fixture fx;
  Recipe r = fx.recipe({"train.steps=150", "checkpoint.every=0", "eval.every=0", "optimizer.lr=1e-2", "schedule.warmup=10"});
  TrainResult res = train(r, quiet());
  data::TokenFile val(r.data.val);
  const double h = unigram_entropy_nats(val);
  MESSAGE("unigram entropy " << h << " nats, first loss " << res.losses.front() << ", final val loss " << res.last_val_loss);
  CHECK(res.losses.front() > 0.9 * std::log(257.0));  // starts near uniform over the vocabulary
  CHECK(res.last_val_loss < 0.6 * h);
  CHECK(std::filesystem::exists(res.run_dir + "/loss.svg"));
  CHECK(std::filesystem::exists(res.run_dir + "/metrics.jsonl"));
}

TEST_CASE("training: resume is bit-exact") {
  Fixture fx;
  // Straight through: 12 steps.
  TrainResult straight = train(fx.recipe({"run.name=straight"}), quiet());
  // The same recipe under another name, checkpointing at 4, 8, 12. Removing step 12 leaves the
  // run directory as a run stopped after step 8 leaves it; a new process resumes from there.
  TrainResult resumed = test::train_then_resume_from_step_8(fx.recipe({"run.name=resumed"})).second;
  for (size_t i = 0; i < 4; ++i) CHECK(resumed.losses[i] == straight.losses[8 + i]);  // bit for bit
  CHECK(weights_of(resumed.last_checkpoint) == weights_of(straight.last_checkpoint));
  CHECK(resumed.last_val_loss == straight.last_val_loss);
}

TEST_CASE("training: eval of a checkpoint equals the trainer's validation at that step") {
  Fixture fx;
  Recipe r = fx.recipe();
  TrainResult res = train(r, quiet());
  std::string ck = res.last_checkpoint;
  Recipe stored = checkpoint_recipe(ck);
  ModelConfig mc = stored.model;
  Generator gen(0);
  auto model = build_model(mc, gen);
  load_checkpoint_files(ck, *model, nullptr);
  data::TokenFile val(stored.data.val);
  EvalResult ev = evaluate(*model, val, {stored.data.seq_len, stored.data.seq_len, stored.eval.max_tokens, 8});
  CHECK(ev.loss == res.last_val_loss);
  CHECK(ev.tokens == 2048);
  CHECK(ev.ppl == doctest::Approx(std::exp(ev.loss)));
  CHECK(ev.bpb > 0);
}

TEST_CASE("training: evaluation windows score every token once, whatever the stride") {
  Fixture fx;
  Recipe r = fx.recipe({"train.steps=60", "optimizer.lr=1e-2", "checkpoint.every=0", "eval.every=0"});
  TrainResult res = train(r, quiet());
  Generator gen(0);
  auto model = build_model(r.model, gen);
  load_checkpoint_files(res.last_checkpoint, *model, nullptr);
  data::TokenFile val(r.data.val);
  EvalResult full = evaluate(*model, val, {32, 32, 0, 8});
  EvalResult strided = evaluate(*model, val, {32, 8, 0, 8});

  CHECK(full.tokens == val.size() - 1);
  CHECK(strided.tokens == val.size() - 1);
  CHECK(std::isfinite(strided.loss));
  EvalResult capped = evaluate(*model, val, {32, 32, 100, 8});
  CHECK(capped.tokens == 100);
  // The first three windows by hand: the model's cross-entropy on each, averaged.
  EvalResult three = evaluate(*model, val, {32, 32, 96, 2});
  std::vector<int32_t> ids(97);
  val.read(0, 97, ids.data());
  Tensor in = Tensor::empty({3, 32}, DType::i32);
  Tensor tg = Tensor::empty({96}, DType::i32);
  for (int w = 0; w < 3; ++w)
    for (int i = 0; i < 32; ++i) {
      in.data<int32_t>()[w * 32 + i] = ids[static_cast<size_t>(w * 32 + i)];
      tg.data<int32_t>()[w * 32 + i] = ids[static_cast<size_t>(w * 32 + i + 1)];
    }
  NoGradGuard no_grad;
  double by_hand = cross_entropy(reshape(model->forward(in).logits, {96, 257}), tg).item();
  CHECK(three.tokens == 96);
  CHECK(three.loss == doctest::Approx(by_hand).epsilon(1e-6));
}

TEST_CASE("training: checkpoints of another model, damaged checkpoints and bad data are refused") {
  Fixture fx;
  TrainResult res = train(fx.recipe({"train.steps=4"}), quiet());
  // Another width: every parameter mismatches; the first one is named.
  Recipe wide = fx.recipe({"train.steps=8", "model.d_model=64"});
  CHECK_THROWS_WITH_AS(train(wide, quiet(res.last_checkpoint)),
                       doctest::Contains("model.safetensors: 'embed.weight' is f32[257, 32] cpu but the model has f32[257, 64]"),
                       Error);
  Recipe deeper = fx.recipe({"train.steps=8", "model.n_layers=3"});
  CHECK_THROWS_WITH_AS(train(deeper, quiet(res.last_checkpoint)), doctest::Contains("no tensor 'layers.2."), Error);
  // A damaged state.json.
  eat::test::write_text(res.last_checkpoint + "/state.json", "{\"format\": \"something\"}");
  CHECK_THROWS_WITH_AS(train(fx.recipe({"train.steps=8"}), quiet(res.last_checkpoint)),
                       doctest::Contains("not an eat checkpoint state file"), Error);
  CHECK_THROWS_WITH_AS(train(fx.recipe({"data.train=" + fx.dir / "nope.tok"}), quiet()),
                       doctest::Contains("nope.tok: cannot open"), Error);
  CHECK_THROWS_WITH_AS(train(fx.recipe(), quiet(fx.dir / "no_such_checkpoint")), doctest::Contains("no such checkpoint"), Error);
  // Validation files are checked whole before the first step: an id the model cannot embed, or
  // too few tokens to score, stops the run at once, not at its first validation.
  std::vector<int32_t> ids(100, 65);
  ids[90] = 400;
  data::write_token_file(fx.dir / "bad_val.tok", ids, 512, "byte", 100);
  Recipe bad_val = fx.recipe({"data.val=" + fx.dir / "bad_val.tok", "eval.every=0"});
  CHECK_THROWS_WITH_AS(train(bad_val, quiet()), doctest::Contains("bad_val.tok: id 400 at position 90 is outside the vocabulary"),
                       Error);
  data::write_token_file(fx.dir / "one.tok", {65}, 257, "byte", 1);
  CHECK_THROWS_WITH_AS(train(fx.recipe({"data.val=" + fx.dir / "one.tok"}), quiet()),
                       doctest::Contains("one.tok holds 1 tokens, too few to score anything"), Error);
}

TEST_CASE("training: a checkpoint whose state.json or recipe.toml was changed is refused, naming the field") {
  Fixture fx;
  TrainResult res = train(fx.recipe({"train.steps=3"}), quiet());
  const std::string ck = res.last_checkpoint, state_path = ck + "/state.json", recipe_path = ck + "/recipe.toml";
  const std::string state = eat::test::read_text(state_path), recipe = eat::test::read_text(recipe_path);
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = state;
    const size_t at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
  };
  const std::vector<std::pair<std::string, std::string>> damaged = {
      {with("\"step\": 3", "\"step\": 1"), "says step 1 inside step_00000003"},
      {with("\"step\": 3", "\"step\": 2.5"), "step = 2.5 must be a whole number"},
      {with("\"step\": 3", "\"step\": -3"), "step = -3 must be >= 0"},
      {with("\"samples_consumed\": 12", "\"samples_consumed\": 4611686018427387904"),
       "samples_consumed = 4611686018427387904 is impossible after 3 steps"}};
  for (const auto& [text, message] : damaged) {
    CAPTURE(message);
    eat::test::write_text(state_path, text);
    CHECK_THROWS_WITH_AS(checkpoint_state(ck), doctest::Contains(message.c_str()), Error);
  }
  eat::test::write_text(state_path, state);
  // recipe.toml edited after saving (a shape that still loads): refused by its hash.
  eat::test::write_text(recipe_path, recipe + "\n");
  CHECK_THROWS_WITH_AS(checkpoint_recipe(ck), doctest::Contains("recipe.toml: edited after the checkpoint was saved"), Error);
  eat::test::write_text(recipe_path, recipe);
  CHECK(checkpoint_recipe(ck).text == recipe);
}

TEST_CASE("training: a diverging run stops with the step named and keeps the last good checkpoint") {
  Fixture fx;
  TrainResult res = train(fx.recipe({"train.steps=4"}), quiet());
  // An absurd learning rate without clipping blows the weights up within a few steps.
  Recipe wild = fx.recipe({"train.steps=40", "optimizer.lr=1e6", "train.grad_clip=0", "checkpoint.every=0", "eval.every=0"});
  try {
    train(wild, quiet("auto"));
    FAIL("training with lr 1e6 did not stop");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK(msg.find("step ") != std::string::npos);
    CHECK(msg.find("The last good checkpoint is") != std::string::npos);
  }
  auto cks = list_checkpoints(res.run_dir);
  REQUIRE(!cks.empty());
  CHECK(cks.back().step == 4);
  // A learning rate that overflows f32 makes every weight inf in one update: that state is never
  // written as a checkpoint, and the error names it and the last good one.
  Recipe overflow = fx.recipe({"train.steps=6", "optimizer.lr=1e300", "checkpoint.every=1", "eval.every=0"});
  CHECK_THROWS_WITH_AS(train(overflow, quiet("auto")),
                       doctest::Contains("step 5: the weight embed.weight is not finite (the update diverged); stopping "
                                         "without writing a checkpoint. The last good checkpoint is"),
                       Error);
  CHECK(list_checkpoints(res.run_dir).back().step == 4);
}

TEST_CASE("training: SIGINT finishes the step, checkpoints, and the run resumes from there") {
  Fixture fx;
  Recipe r = fx.recipe({"train.steps=100000", "checkpoint.every=0", "eval.every=0"});
  std::thread interrupter([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    std::raise(SIGINT);
  });
  TrainResult res = train(r, quiet());
  interrupter.join();
  CHECK(res.interrupted);
  CHECK(res.final_step > 0);
  CHECK(res.final_step < 100000);
  auto cks = list_checkpoints(res.run_dir);
  REQUIRE(!cks.empty());
  CHECK(cks.back().step == res.final_step);
  Recipe more = fx.recipe({"train.steps=" + std::to_string(res.final_step + 2), "checkpoint.every=0", "eval.every=0"});
  TrainResult next = train(more, quiet("auto"));
  CHECK(next.start_step == res.final_step);
  CHECK(next.final_step == res.final_step + 2);
}
