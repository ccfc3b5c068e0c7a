#pragma once
// Held-out evaluation: loss per token, perplexity, bits per byte, over a token file cut into
// windows. The trainer's periodic validation and `eat eval` call the same function with the
// same settings, so they agree.
#include <cstdint>
#include <limits>
#include <vector>

#include "data/mask_file.h"
#include "data/token_file.h"
#include "framework/model.h"
#include "framework/train/loss_terms.h"

namespace eat {

struct EvalOptions {
  int64_t window = 512;    // tokens of context per forward
  int64_t stride = 512;    // distance between window starts; < window scores only the new tokens
  int64_t max_tokens = 0;  // 0: the whole file
  int64_t batch = 8;       // windows per forward (fixed, so results do not depend on anything else)
  bool by_position = false;  // also the loss in log2 position buckets (EvalResult::by_position)
};

// The scored tokens whose position in their window lies in [first, last]: position p (1-based) is
// the prediction made from the window's first p tokens, so position 1 sees one token of context.
struct PositionBucket {
  int64_t first = 0, last = 0;
  double loss = 0;  // mean nats per token
  int64_t tokens = 0;
};

// The buckets 1, 2-3, 4-7, ..., the last one cut at the window: [2^k, min(2^(k+1) - 1, window)].
std::vector<PositionBucket> position_buckets(int64_t window);

struct EvalResult {
  double loss = 0;        // mean negative log-likelihood, nats per token
  double ppl = 0;         // exp(loss)
  double bpb = 0;         // bits per byte of raw text: loss * tokens / ln 2 / bytes
  double ppl_stderr = 0;  // delta method on the standard error of per-window mean losses
  int64_t tokens = 0;     // scored tokens
  int64_t windows = 0;
  // Masked data (a mask beside the token file): tokens counts the scored targets, and accuracy is
  // the share of them the model's argmax predicts exactly. NaN without a mask.
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  // The model's aux terms, each the mean over the windows of its value on a forward (whole
  // windows, context included); empty for most families.
  std::vector<AuxValue> aux;
  // With EvalOptions::by_position: every bucket of the window, those without scored tokens
  // included (loss 0, tokens 0). Their token-weighted mean is `loss`.
  std::vector<PositionBucket> by_position;
};

// The model on any device: ids and targets stay on the host (ops upload them), the loss of a
// window comes back as one number.
// With a mask, each example of the file is one window (options.window must be its length minus
// one; stride is unused) and only the scored targets count; max_tokens > 0 keeps the first
// max(1, max_tokens / window) examples.
EvalResult evaluate(LanguageModel& model, const data::TokenFile& file, const EvalOptions& options,
                    const data::MaskFile* mask = nullptr);
// The masked case of evaluate() (evaluate_examples.cpp).
EvalResult evaluate_examples(LanguageModel& model, const data::TokenFile& file, const data::MaskFile& mask,
                             const EvalOptions& options);

}  // namespace eat
