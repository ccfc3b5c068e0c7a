// eat eval --checkpoint DIR [--data FILE] [--seq-len N] [--stride N] [--max-tokens N] [--task mqar] [--by-position]
//          [--json]
#include <cstdio>
#include <nlohmann/json.hpp>

#include "data/mask_file.h"
#include "data/token_file.h"
#include "data/tokenizer.h"
#include "app/checkpoint_model.h"
#include "app/commands.h"
#include "base/error.h"
#include "framework/train/evaluate.h"

namespace eat::cli {

namespace {

struct EvalArgs {
  std::string checkpoint, data, device, task;
  int64_t seq_len = 0, stride = 0, max_tokens = -1, batch = 8;
  bool json = false, by_position = false;
};

void run_eval(const EvalArgs& a) {
  CheckpointModel loaded = load_checkpoint_model(a.checkpoint, a.device, "eval");
  const std::string& dir = loaded.dir;
  const Recipe& recipe = loaded.recipe;
  LanguageModel* model = loaded.model.get();
  const TrainState& state = loaded.state;

  std::string data = a.data.empty() ? recipe.data.val : a.data;
  EAT_CHECK(!data.empty(), "eval: the checkpoint's recipe has no data.val; pass --data FILE");
  data::TokenFile file(data);
  file.check_ids(recipe.model.vocab_size,
                 "the checkpoint's model.vocab_size = " + std::to_string(recipe.model.vocab_size));
  // Ids in range can still be another tokenizer's: subword data must come with the model's tokenizer.
  const std::unique_ptr<data::Tokenizer> data_tokenizer = data::token_files_tokenizer(file, nullptr);
  EAT_CHECK((data_tokenizer ? data_tokenizer->model_bytes() : "") == loaded.tokenizer->model_bytes(), "eval: ", data,
            " was written by another tokenizer (", file.info().tokenizer, ", vocabulary ", file.info().vocab_size,
            ") than the one ", dir, " was trained with (", loaded.tokenizer->name(), ", vocabulary ",
            loaded.tokenizer->vocab_size(), "; a sentencepiece model is its tokenizer.model)");
  // A mask beside the data scores only its targets; the recall task needs one.
  std::unique_ptr<data::MaskFile> mask = data::open_mask_beside(file);
  EAT_CHECK(!(a.task == "mqar" && !mask), "eval --task mqar: ", data, " has no mask beside it (", data::mask_path_for(data),
            "); make the data with `eat data prepare mqar`");
  EAT_CHECK(!(a.by_position && mask), "eval --by-position: ", data, " has a loss mask (", data::mask_path_for(data),
            "), so only its answers are scored; the position buckets need every position of a window");
  EvalOptions opt;
  opt.window = a.seq_len > 0 ? a.seq_len : recipe.data.seq_len;
  opt.stride = a.stride > 0 ? a.stride : opt.window;
  opt.max_tokens = a.max_tokens >= 0 ? a.max_tokens : 0;  // the whole split unless asked
  opt.batch = a.batch;
  opt.by_position = a.by_position;
  EvalResult r = evaluate(*model, file, opt, mask.get());
  if (a.json) {
    nlohmann::ordered_json j = {{"loss", r.loss},     {"ppl", r.ppl},       {"bpb", r.bpb},
                                {"tokens", r.tokens}, {"ppl_stderr", r.ppl_stderr}, {"windows", r.windows},
                                {"step", state.step}, {"checkpoint", dir},  {"data", data},
                                {"window", opt.window}, {"train_seq_len", recipe.data.seq_len}};
    if (mask) j["accuracy"] = r.accuracy;
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
    std::printf(mask ? "bits/answer %.4f\n" : "bits/byte   %.4f\n", r.bpb);  // masked: bits per scored target
    if (mask) std::printf("accuracy    %.4f (argmax over %lld answers)\n", r.accuracy, static_cast<long long>(r.tokens));
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
  cmd->add_option("--task", a->task,
                  "mqar: the data must carry a loss mask (eat data prepare mqar); adds the accuracy of the answers")
      ->check(CLI::IsMember({"mqar"}));
  cmd->add_flag("--by-position", a->by_position,
                "Also the mean loss in log2 buckets of the position in the window (1, 2-3, 4-7, ... up to the window)");
  cmd->add_flag("--json", a->json, "Print one JSON object: loss, ppl, bpb, tokens, ppl_stderr (and aux_<name>, aux_loss of a model with aux terms; by_position: [{first, last, loss, tokens}])");
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace eat::cli
