#pragma once
// Held-out evaluation: loss per token, perplexity, bits per byte, over a token file cut into
// windows. The trainer's periodic validation and `eat eval` call the same function with the
// same settings, so they agree.
#include <cstdint>
#include <vector>

#include "data/token_file.h"
#include "framework/model.h"
#include "framework/train/loss_terms.h"

namespace eat {

struct EvalOptions {
  int64_t window = 512;    // tokens of context per forward
  int64_t stride = 512;    // distance between window starts; < window scores only the new tokens
  int64_t max_tokens = 0;  // 0: the whole file
  int64_t batch = 8;       // windows per forward (fixed, so results do not depend on anything else)
};

struct EvalResult {
  double loss = 0;        // mean negative log-likelihood, nats per token
  double ppl = 0;         // exp(loss)
  double bpb = 0;         // bits per byte of raw text: loss * tokens / ln 2 / bytes
  double ppl_stderr = 0;  // delta method on the standard error of per-window mean losses
  int64_t tokens = 0;     // scored tokens
  int64_t windows = 0;
  // The model's aux terms, each the mean over the windows of its value on a forward (whole
  // windows, context included); empty for most families.
  std::vector<AuxValue> aux;
};

// The model on any device: ids and targets stay on the host (ops upload them), the loss of a
// window comes back as one number.
EvalResult evaluate(LanguageModel& model, const data::TokenFile& file, const EvalOptions& options);

}  // namespace eat
