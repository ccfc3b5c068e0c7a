#include "framework/decode/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "base/error.h"

namespace eat {

std::string sampling_options_error(const SamplingOptions& o) {
  std::ostringstream msg;
  if (!(o.temperature >= 0)) msg << "--temperature must be at least 0 (0 is greedy), got " << o.temperature;
  else if (o.top_k < 0) msg << "--top-k must be at least 0 (0 keeps every token), got " << o.top_k;
  else if (!(o.top_p > 0 && o.top_p <= 1)) msg << "--top-p must be in (0, 1], got " << o.top_p;
  return msg.str();
}

int32_t sample_token(const std::vector<double>& logits, const SamplingOptions& o, Generator& gen) {
  EAT_CHECK(!logits.empty(), "sample_token: no logits");
  const std::string error = sampling_options_error(o);
  EAT_CHECK(error.empty(), "sample_token: ", error);
  // Candidates from the most likely down; a stable sort keeps equal logits in id order, so every
  // tie goes to the lower id.
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  if (o.temperature == 0 || o.top_k == 1) return order.front();

  size_t kept = order.size();
  if (o.top_k > 0) kept = std::min(kept, static_cast<size_t>(o.top_k));
  // Softmax over the kept candidates at the temperature, shifted by the largest logit.
  std::vector<double> prob(kept);
  double total = 0;
  for (size_t i = 0; i < kept; ++i) total += prob[i] = std::exp((logits[order[i]] - logits[order[0]]) / o.temperature);
  // Nucleus: the shortest prefix whose probability reaches top_p (the first candidate always).
  if (o.top_p < 1) {
    double mass = 0;
    size_t nucleus = 0;
    while (nucleus < kept && (nucleus == 0 || mass < o.top_p * total)) mass += prob[nucleus++];
    kept = nucleus;
    total = mass;
  }
  if (kept == 1) return order.front();
  double u = gen.uniform() * total;
  for (size_t i = 0; i < kept; ++i) {
    if (u < prob[i]) return order[i];
    u -= prob[i];
  }
  return order[kept - 1];  // rounding left u at the very end
}

}  // namespace eat
