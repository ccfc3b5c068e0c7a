// eat generate --checkpoint DIR --prompt TEXT [--max-new-tokens N] [--temperature T] [--top-k K]
//              [--top-p P] [--seed S] [--device cpu|cuda]
#include <cstdio>

#include "app/checkpoint_model.h"
#include "app/commands.h"
#include "base/error.h"
#include "framework/decode/generate.h"

namespace eat::cli {

namespace {

struct GenerateArgs {
  std::string checkpoint, prompt, device;
  GenerateOptions options;
};

double per_second(int64_t tokens, double seconds) { return seconds > 0 ? static_cast<double>(tokens) / seconds : 0; }

void run_generate(const GenerateArgs& a) {
  // Flags first: a bad one is reported before the model loads.
  const std::string error = sampling_options_error(a.options.sampling);
  EAT_CHECK(error.empty(), "generate: ", error);
  CheckpointModel loaded = load_checkpoint_model(a.checkpoint, a.device, "generate");
  // The checkpoint's tokenizer: the one its training data were written with.
  const data::Tokenizer* tokenizer = loaded.tokenizer.get();
  std::vector<int32_t> prompt = encode_prompt(*tokenizer, a.prompt, loaded.recipe.model.vocab_size);

  GenerateOptions options = a.options;
  options.stop_id = static_cast<int32_t>(tokenizer->end_of_text());
  // Raw bytes as they are drawn: a character of several bytes is whole once its last byte is out.
  GenerateStats s = generate(*loaded.model, prompt, options, [&](int32_t id) {
    const std::string text = tokenizer->piece_bytes(id);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  });
  std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr, "prompt %lld tokens at %.1f tokens/s | generated %lld tokens at %.1f tokens/s%s | decoding state %lld bytes\n",
               static_cast<long long>(s.prompt_tokens), per_second(s.prompt_tokens, s.prefill_seconds),
               static_cast<long long>(s.new_tokens), per_second(s.new_tokens, s.decode_seconds),
               s.stopped ? " (stopped at end of text)" : "", static_cast<long long>(s.state_bytes));
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "Continue a prompt with text sampled from a checkpoint's model");
  auto a = std::make_shared<GenerateArgs>();
  SamplingOptions& sampling = a->options.sampling;
  cmd->add_option("--checkpoint", a->checkpoint, "Checkpoint directory, or a run directory (its newest checkpoint)")
      ->required();
  cmd->add_option("--prompt", a->prompt, "Text to continue (encoded with the checkpoint's tokenizer: bytes, or its tokenizer.model)")->required();
  cmd->add_option("--max-new-tokens", a->options.max_new_tokens, "Tokens to generate at most (fewer at end of text)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--temperature", sampling.temperature, "Softmax temperature; 0 is greedy (argmax, ties to the lower id)")
      ->capture_default_str();
  cmd->add_option("--top-k", sampling.top_k, "Sample among the k most likely tokens; 0: all")->capture_default_str();
  cmd->add_option("--top-p", sampling.top_p, "Sample among the fewest most likely tokens whose probability reaches p, in (0, 1]")
      ->capture_default_str();
  cmd->add_option("--seed", a->options.seed, "Sampling seed: the same seed gives the same text")->capture_default_str();
  cmd->add_option("--device", a->device, "cpu or cuda (default: the run's train.device, in its precision)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->callback([a] { run_generate(*a); });
}

}  // namespace eat::cli
