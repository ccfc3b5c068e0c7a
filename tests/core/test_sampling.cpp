// Next-token sampling (framework/decode/sampling.h): greedy and its ties, seeded determinism, and
// the candidate sets of top-k and top-p with the temperature's distribution.
#include <doctest/doctest.h>

#include <cmath>

#include "base/error.h"
#include "framework/decode/sampling.h"

using namespace eat;

namespace {

std::vector<double> random_logits(Generator& gen, size_t n) {
  std::vector<double> logits(n);
  for (double& l : logits) l = 3 * gen.normal();
  return logits;
}

int32_t argmax(const std::vector<double>& logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
  return best;
}

// How often each id comes out of n draws.
std::vector<double> frequencies(const std::vector<double>& logits, const SamplingOptions& o, int n) {
  Generator gen(7);
  std::vector<double> f(logits.size());
  for (int i = 0; i < n; ++i) f[static_cast<size_t>(sample_token(logits, o, gen))] += 1.0 / n;
  return f;
}

}  // namespace

TEST_CASE("sampling: greedy takes the largest logit, ties to the lower id, and draws nothing") {
  Generator gen(1);
  SamplingOptions greedy{.temperature = 0};
  CHECK(sample_token({1, 3, 3, 2}, greedy, gen) == 1);
  CHECK(sample_token({-1, -1}, greedy, gen) == 0);
  CHECK(gen.counter() == 0);
}

TEST_CASE("sampling: top-k 1 and a tiny top-p are greedy at any temperature") {
  Generator draws(2), gen(3);
  for (int i = 0; i < 200; ++i) {
    std::vector<double> logits = random_logits(draws, 257);
    const int32_t best = argmax(logits);
    CHECK(sample_token(logits, {.temperature = 1.5, .top_k = 1}, gen) == best);
    CHECK(sample_token(logits, {.temperature = 0.7, .top_p = 1e-9}, gen) == best);
  }
}

TEST_CASE("sampling: the same seed gives the same tokens; another seed others") {
  Generator draws(4);
  std::vector<std::vector<double>> rows;
  for (int i = 0; i < 100; ++i) rows.push_back(random_logits(draws, 257));
  auto run = [&](uint64_t seed) {
    Generator gen(seed);
    std::vector<int32_t> ids;
    for (const auto& row : rows) ids.push_back(sample_token(row, {.temperature = 1, .top_k = 40, .top_p = 0.95}, gen));
    return ids;
  };
  CHECK(run(5) == run(5));
  CHECK(run(5) != run(6));
}

TEST_CASE("sampling: the temperature's softmax, restricted to the top k or the nucleus") {
  // Probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1. 40000 draws: a frequency's standard error
  // is at most 0.0025, the tolerance 0.015 six of them.
  const std::vector<double> logits = {std::log(0.15), std::log(0.5), std::log(0.05), std::log(0.3)};
  const double tol = 0.015;
  auto f = frequencies(logits, {}, 40000);
  CHECK(std::abs(f[1] - 0.5) < tol);
  CHECK(std::abs(f[3] - 0.3) < tol);
  CHECK(std::abs(f[0] - 0.15) < tol);
  CHECK(std::abs(f[2] - 0.05) < tol);
  // Temperature 2: p^(1/2), renormalized.
  const double z = std::sqrt(0.5) + std::sqrt(0.3) + std::sqrt(0.15) + std::sqrt(0.05);
  f = frequencies(logits, {.temperature = 2}, 40000);
  CHECK(std::abs(f[1] - std::sqrt(0.5) / z) < tol);
  CHECK(std::abs(f[2] - std::sqrt(0.05) / z) < tol);
  // Top-k 2: 0.5 and 0.3 renormalized; never the others.
  f = frequencies(logits, {.top_k = 2}, 40000);
  CHECK(std::abs(f[1] - 0.625) < tol);
  CHECK(f[0] == 0);
  CHECK(f[2] == 0);
  // Top-p 0.9: 0.5 + 0.3 = 0.8 falls short, so 0.15 joins; 0.05 never.
  f = frequencies(logits, {.top_p = 0.9}, 40000);
  CHECK(std::abs(f[0] - 0.15 / 0.95) < tol);
  CHECK(f[2] == 0);
  // Top-p 0.7: 0.5 and 0.3.
  f = frequencies(logits, {.top_p = 0.7}, 40000);
  CHECK(std::abs(f[3] - 0.375) < tol);
  CHECK(f[0] == 0);
}

TEST_CASE("sampling: invalid options name their flag") {
  CHECK(sampling_options_error({}) == "");
  CHECK(sampling_options_error({.temperature = -0.5}) == "--temperature must be at least 0 (0 is greedy), got -0.5");
  CHECK(sampling_options_error({.top_k = -1}) == "--top-k must be at least 0 (0 keeps every token), got -1");
  CHECK(sampling_options_error({.top_p = 0}) == "--top-p must be in (0, 1], got 0");
  CHECK(sampling_options_error({.top_p = 1.5}) == "--top-p must be in (0, 1], got 1.5");
  CHECK(sampling_options_error({.top_p = std::nan("")}) == "--top-p must be in (0, 1], got nan");
  Generator gen(1);
  CHECK_THROWS_AS(sample_token({1, 2}, {.top_k = -1}, gen), Error);
}
