// eat eval --checkpoint DIR [--data FILE] [--seq-len N] [--stride N] [--max-tokens N] [--by-position] [--json]
#include <cstdio>
#include <nlohmann/json.hpp>

#include "data/token_file.h"
#include "app/commands.h"
#include "base/error.h"
#include "framework/io/checkpoint_dir.h"
#include "framework/train/checkpoint.h"
#include "framework/train/evaluate.h"
#include "framework/train/placement.h"

namespace eat::cli {

namespace {

struct EvalArgs {
  std::string checkpoint, data, device;
  int64_t seq_len = 0, stride = 0, max_tokens = -1, batch = 8;
  bool json = false, by_position = false;
};

void run_eval(const EvalArgs& a) {
  std::string dir = resolve_checkpoint(a.checkpoint);  // a run directory stands for its newest checkpoint
  Recipe recipe = checkpoint_recipe(dir);
  if (!a.device.empty() && a.device != recipe.train.device) {
    // Another device than the run's. bf16 runs store f32 masters, evaluated in f32 on the CPU;
    // f64 weights have no CUDA kernels.
    EAT_CHECK(!(a.device == "cuda" && recipe.train.precision == "f64"), "eval --device cuda: ", dir,
              " holds f64 weights (train.precision = \"f64\"), which the CUDA kernels do not run; use --device cpu");
    recipe.train.device = a.device;
    recipe.train.device_where = "--device " + a.device;
    if (recipe.train.precision == "bf16") recipe.train.precision = "f32";
    recipe.train.tf32 = false;
  }
  auto model = build_placed_model(recipe);
  TrainState state = load_checkpoint_files(dir, *model, nullptr);

  std::string data = a.data.empty() ? recipe.data.val : a.data;
  EAT_CHECK(!data.empty(), "eval: the checkpoint's recipe has no data.val; pass --data FILE");
  data::TokenFile file(data);
  EvalOptions opt;
  opt.window = a.seq_len > 0 ? a.seq_len : recipe.data.seq_len;
  opt.stride = a.stride > 0 ? a.stride : opt.window;
  opt.max_tokens = a.max_tokens >= 0 ? a.max_tokens : 0;  // the whole split unless asked
  opt.batch = a.batch;
  opt.by_position = a.by_position;
  EvalResult r = evaluate(*model, file, opt);
  if (a.json) {
    nlohmann::ordered_json j = {{"loss", r.loss},     {"ppl", r.ppl},       {"bpb", r.bpb},
                                {"tokens", r.tokens}, {"ppl_stderr", r.ppl_stderr}, {"windows", r.windows},
                                {"step", state.step}, {"checkpoint", dir},  {"data", data},
                                {"window", opt.window}, {"train_seq_len", recipe.data.seq_len}};
    add_aux_fields(j, r.aux);
    if (a.by_position) {
      j["by_position"] = nlohmann::ordered_json::array();
      for (const PositionBucket& p : r.by_position)
        j["by_position"].push_back({{"first", p.first}, {"last", p.last}, {"loss", p.loss}, {"tokens", p.tokens}});
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("checkpoint  %s (step %lld, %s)\n", dir.c_str(), static_cast<long long>(state.step), state.family.c_str());
    std::printf("device      %s, %s\n", recipe.train.device.c_str(), recipe.train.precision.c_str());
    std::printf("data        %s (window %lld, stride %lld)\n", data.c_str(), static_cast<long long>(opt.window),
                static_cast<long long>(opt.stride));
    if (opt.window > recipe.data.seq_len)
      std::printf("            the window is longer than the training length %lld: positions past it were never trained on\n",
                  static_cast<long long>(recipe.data.seq_len));
    std::printf("tokens      %lld in %lld windows\n", static_cast<long long>(r.tokens), static_cast<long long>(r.windows));
    std::printf("loss        %.4f nats/token\n", r.loss);
    std::printf("perplexity  %.3f +- %.3f\n", r.ppl, r.ppl_stderr);
    std::printf("bits/byte   %.4f\n", r.bpb);
    for (const AuxValue& aux : r.aux) std::printf("aux %-7s %.4f (weight %g)\n", aux.name.c_str(), aux.value, aux.weight);
    if (a.by_position) {
      std::printf("\nloss by position in the window (position p predicts token p + 1 from p tokens of context)\n");
      std::printf("%-13s %10s %10s\n", "positions", "loss", "tokens");
      for (const PositionBucket& p : r.by_position) {
        char range[32];
        if (p.first == p.last) std::snprintf(range, sizeof range, "%lld", static_cast<long long>(p.first));
        else std::snprintf(range, sizeof range, "%lld-%lld", static_cast<long long>(p.first), static_cast<long long>(p.last));
        if (p.tokens > 0) std::printf("%-13s %10.4f %10lld\n", range, p.loss, static_cast<long long>(p.tokens));
        else std::printf("%-13s %10s %10d\n", range, "n/a", 0);
      }
    }
  }
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate perplexity and bits per byte of a checkpoint");
  auto a = std::make_shared<EvalArgs>();
  cmd->add_option("--checkpoint", a->checkpoint, "Checkpoint directory, or a run directory (its newest checkpoint)")
      ->required();
  cmd->add_option("--data", a->data, "Token file (default: the recipe's data.val)");
  cmd->add_option("--seq-len", a->seq_len, "Window length (default: the recipe's data.seq_len)")->check(CLI::PositiveNumber);
  cmd->add_option("--stride", a->stride, "Distance between windows (default: the window; smaller scores only new tokens)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-tokens", a->max_tokens, "Score at most this many tokens (default: all; the trainer's validation uses eval.max_tokens)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch", a->batch, "Windows per forward")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--device", a->device, "cpu or cuda (default: the run's train.device, in its precision)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_flag("--by-position", a->by_position,
                "Also the mean loss in log2 buckets of the position in the window (1, 2-3, 4-7, ... up to the window)");
  cmd->add_flag("--json", a->json, "Print one JSON object: loss, ppl, bpb, tokens, ppl_stderr (and aux_<name>, aux_loss of a model with aux terms; by_position: [{first, last, loss, tokens}])");
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace eat::cli
