#include "framework/decode/generate.h"

#include <chrono>

#include "base/error.h"

namespace eat {

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The last position's logits of a [1, T, V] step, read back alone (the rest stays on the device).
std::vector<double> last_row(const Tensor& logits) {
  const int64_t T = logits.size(1), V = logits.size(2);
  return logits.reshape({T, V}).slice_outer(T - 1, T).to_f64_vector();
}

}  // namespace

std::vector<int32_t> encode_prompt(const data::Tokenizer& tokenizer, std::string_view text, int64_t vocab) {
  EAT_CHECK(!text.empty(), "generate: the prompt is empty; give the text to continue");
  std::vector<int32_t> ids = tokenizer.encode(text);
  for (int32_t id : ids)
    EAT_CHECK(id < vocab, "generate: the prompt's token ", id, " (", tokenizer.name(), " tokenizer) is outside the model's vocabulary of ",
              vocab, " ids");
  return ids;
}

GenerateStats generate(LanguageModel& model, const std::vector<int32_t>& prompt, const GenerateOptions& options,
                       const std::function<void(int32_t)>& emit) {
  EAT_CHECK(!prompt.empty(), "generate: the prompt is empty");
  std::unique_ptr<Decoder> decoder = model.decoder();
  EAT_CHECK(decoder != nullptr, "generate: this model family has no decoder");
  Generator gen(options.seed);
  GenerateStats stats;
  stats.prompt_tokens = static_cast<int64_t>(prompt.size());

  auto start = std::chrono::steady_clock::now();
  // to_f64_vector waits for the device, so each step's time is its whole compute.
  std::vector<double> logits = last_row(decoder->step(Tensor::from_vector<int32_t>(prompt, {1, stats.prompt_tokens})));
  stats.prefill_seconds = seconds_since(start);

  start = std::chrono::steady_clock::now();
  while (stats.new_tokens < options.max_new_tokens) {
    const int32_t id = sample_token(logits, options.sampling, gen);
    if (id == options.stop_id) {
      stats.stopped = true;
      break;
    }
    emit(id);
    ++stats.new_tokens;
    // The last token needs no step: nothing samples from its logits.
    if (stats.new_tokens < options.max_new_tokens) logits = last_row(decoder->step(Tensor::from_vector<int32_t>({id}, {1, 1})));
  }
  stats.decode_seconds = seconds_since(start);
  stats.state_bytes = decoder->state_bytes();
  return stats;
}

}  // namespace eat
