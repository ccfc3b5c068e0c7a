#pragma once
// Text continuation through a model's Decoder: the prompt in one step, then one sampled token per
// step, each handed to a callback as soon as it is drawn (streaming).
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "data/tokenizer.h"

#include "framework/decode/sampling.h"
#include "framework/model.h"

namespace eat {

struct GenerateOptions {
  int64_t max_new_tokens = 200;
  SamplingOptions sampling;
  uint64_t seed = 0;
  // Generation ends, before emitting it, at this id (the tokenizer's end of text: the model says
  // the document is over); -1: none.
  int32_t stop_id = -1;
};

struct GenerateStats {
  int64_t prompt_tokens = 0, new_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;  // the prompt's step; the steps after it
  int64_t state_bytes = 0;                          // the decoder's state at the end
  bool stopped = false;                             // ended at stop_id before max_new_tokens
};

// The prompt's ids: an error for an empty prompt, and for a token outside the model's vocabulary
// (a byte model trained with fewer than 256 ids, say), naming it.
std::vector<int32_t> encode_prompt(const data::Tokenizer& tokenizer, std::string_view text, int64_t vocab);

// Continues prompt (ids, at least one) with at most max_new_tokens tokens, calling emit(id) for
// each. The model must have a decoder (an error otherwise).
GenerateStats generate(LanguageModel& model, const std::vector<int32_t>& prompt, const GenerateOptions& options,
                       const std::function<void(int32_t)>& emit);

}  // namespace eat
