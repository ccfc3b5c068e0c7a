#pragma once
// Choosing the next token from one position's logits, on the host in double: temperature, top-k
// and top-p (nucleus) sampling, or greedy. The draws come from a seeded Generator, so the same
// seed gives the same tokens.
#include <cstdint>
#include <string>
#include <vector>

#include "base/random.h"

namespace eat {

struct SamplingOptions {
  double temperature = 1;  // 0: greedy (argmax)
  int64_t top_k = 0;       // keep the k most likely tokens; 0: all
  double top_p = 1;        // keep the fewest most likely tokens whose probability reaches p, in (0, 1]
};

// "" when the options are valid, else the message naming the flag (--temperature, --top-k, --top-p).
std::string sampling_options_error(const SamplingOptions& options);

// The next token from logits (one per vocabulary id). Greedy (temperature 0) takes the largest
// logit, ties to the lower id, and draws nothing; so do top-k 1 and a top-p below the most likely
// token's probability, whose candidate sets hold that token alone. Otherwise one uniform draw of gen.
int32_t sample_token(const std::vector<double>& logits, const SamplingOptions& options, Generator& gen);

}  // namespace eat
