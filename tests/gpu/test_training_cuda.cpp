// Training on the GPU against training on the CPU, from the same initial weights and data (the
// model is built on the host from run.seed, then moved): bf16 mixed precision tracks the CPU f32
// losses within 2% at every step, f32 on the GPU within 1e-4; resume on the GPU is bit-exact; a
// GPU checkpoint resumes on the CPU; eval on the GPU equals the trainer's validation.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "data/corpus.h"
#include "data/token_file.h"
#include "framework/io/checkpoint_dir.h"
#include "framework/ops/joins.h"
#include "framework/train/checkpoint.h"
#include "framework/train/evaluate.h"
#include "framework/train/placement.h"
#include "framework/train/trainer.h"
#include "gpu/gpu_guard.h"
#include "temp_dir.h"
#include "training/bucket_mean.h"
#include "training/tiny_run.h"

using namespace eat;
using eat::test::TempDir;
using eat::test::quiet;

namespace {

struct Run {
  TempDir dir{"train_cuda"};
  std::string family;
  explicit Run(std::string f) : family(std::move(f)) {
    data::tokenize_texts({test::synthetic_text(1500)}, dir / "data", "byte", 0.1);
  }
  Recipe recipe(std::vector<std::string> sets) const {
    return parse_recipe(test::recipe_text(dir.str(), family), "test.toml", sets);
  }
};

// The largest |a - b| / |b| over the steps.
double worst_relative(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / std::abs(b[i]));
  return worst;
}

}  // namespace

TEST_CASE("gpu training: 20 steps of bf16 and f32 on cuda track f32 on cpu") {
  test::require_gpu();
  for (const std::string& family : family_names()) {
    CAPTURE(family);
    Run run(family);
    const std::vector<std::string> common = {"train.steps=20", "checkpoint.every=0", "eval.every=0"};
    auto with = [&](std::vector<std::string> extra) {
      std::vector<std::string> sets = common;
      sets.insert(sets.end(), extra.begin(), extra.end());
      return run.recipe(sets);
    };
    TrainResult cpu = train(with({"run.name=cpu"}), quiet());
    TrainResult gpu32 = train(with({"run.name=gpu32", "train.device=cuda"}), quiet());
    TrainResult gpu16 = train(with({"run.name=gpu16", "train.device=cuda", "train.precision=bf16"}), quiet());
    REQUIRE(cpu.losses.size() == 20);
    MESSAGE(family << ": step 20 loss cpu f32 " << cpu.losses.back() << ", cuda f32 " << gpu32.losses.back()
                   << ", cuda bf16 " << gpu16.losses.back());
    CHECK(worst_relative(gpu32.losses, cpu.losses) < 1e-4);
    CHECK(worst_relative(gpu16.losses, cpu.losses) < 0.02);
    // The run learned something, so the comparison is not between two flat curves.
    CHECK(cpu.losses.back() < 0.8 * cpu.losses.front());
    CHECK(std::abs(gpu16.last_val_loss - cpu.last_val_loss) < 0.02 * cpu.last_val_loss);
  }
}

TEST_CASE("gpu training: resume on cuda is bit-exact, and a cuda checkpoint resumes on cpu") {
  test::require_gpu();
  for (const std::string precision : {"f32", "bf16"}) {
    CAPTURE(precision);
    Run run("transnormer");
    const std::vector<std::string> gpu = {"train.device=cuda", "train.precision=" + precision};
    auto with = [&](const std::string& name) {
      std::vector<std::string> sets = gpu;
      sets.push_back("run.name=" + name);
      return run.recipe(sets);
    };
    TrainResult straight = train(with("straight"), quiet());
    auto [whole, resumed] = test::train_then_resume_from_step_8(with("resumed"));
    for (size_t i = 0; i < 4; ++i) CHECK(resumed.losses[i] == straight.losses[8 + i]);  // bit for bit
    CHECK(resumed.last_val_loss == straight.last_val_loss);

    if (precision == "f32") {
      // The step-8 checkpoint of the GPU run continues on the CPU from the same weights and moments.
      Recipe on_cpu = run.recipe({"run.name=on_cpu"});
      TrainResult cpu = train(on_cpu, quiet(list_checkpoints(whole.run_dir).back().path));  // step 8
      CHECK(cpu.start_step == 8);
      REQUIRE(cpu.losses.size() == 4);
      for (size_t i = 0; i < 4; ++i) CHECK(cpu.losses[i] == doctest::Approx(straight.losses[8 + i]).epsilon(1e-4));
    }
  }
}

TEST_CASE("gpu training: eval of a cuda checkpoint on cuda equals the trainer's validation, and by position sums to it") {
  test::require_gpu();
  Run run("transformer");
  Recipe r = run.recipe({"train.device=cuda", "train.precision=bf16"});
  TrainResult res = train(r, quiet());
  Recipe stored = checkpoint_recipe(res.last_checkpoint);
  CHECK(stored.train.device == "cuda");
  auto model = build_placed_model(stored);
  CHECK(model->parameters().front().tensor.device() == Device::cuda);
  CHECK(model->parameters().front().tensor.dtype() == DType::f32);  // the f32 masters
  load_checkpoint_files(res.last_checkpoint, *model, nullptr);
  data::TokenFile val(stored.data.val);
  EvalResult ev = evaluate(*model, val, {stored.data.seq_len, stored.data.seq_len, stored.eval.max_tokens, 8});
  CHECK(ev.loss == res.last_val_loss);
  CHECK(ev.tokens == 2048);
  // By position on the device: the overall loss unchanged, the buckets' token-weighted mean equal
  // to it up to the f32 rounding of each bucket's mean.
  EvalOptions per_position{stored.data.seq_len, stored.data.seq_len, stored.eval.max_tokens, 8};
  per_position.by_position = true;
  EvalResult pos = evaluate(*model, val, per_position);
  CHECK(pos.loss == ev.loss);
  const auto [mean, tokens] = test::bucket_mean(pos.by_position);
  CHECK(tokens == ev.tokens);
  CHECK(mean == doctest::Approx(ev.loss).epsilon(1e-5));
}

TEST_CASE("gpu training: Module::to_ moves every parameter in place") {
  test::require_gpu();
  Run run("transformer");
  Recipe r = run.recipe({});
  auto model = build_placed_model(r);
  Tensor w = model->parameter("layers.0.attn.q_proj.weight");
  const std::vector<double> values = w.to_f64_vector();
  model->to_(Device::cuda);
  CHECK(w.device() == Device::cuda);  // the handle taken before the move sees it
  CHECK(model->parameter("layers.0.attn.q_proj.weight").same(w));
  CHECK(w.to_f64_vector() == values);
  // q, k and v run as one GEMM over one storage (JoinedLinear): they still share it on the device,
  // so their joined weight stays a free view there.
  const Tensor k = model->parameter("layers.0.attn.k_proj.weight"), v = model->parameter("layers.0.attn.v_proj.weight");
  CHECK(k.impl().storage == w.impl().storage);
  CHECK(v.impl().offset == w.impl().offset + 2 * w.numel());
  CHECK(concat_outer({w, k, v}).impl().storage == w.impl().storage);
  model->to_(Device::cpu);
  CHECK(w.device() == Device::cpu);
  CHECK(w.to_f64_vector() == values);
  CHECK(k.impl().storage == w.impl().storage);
}
