// eat bench lightning: forward+backward time per token of decayed linear attention (Lightning
// Attention-2) as the sequence grows -- the chunked kernel should keep a constant time per token
// -- and the chunked kernel against the naive O(T^2) form.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "app/bench_util.h"
#include "app/commands.h"
#include "framework/flops.h"
#include "framework/ops.h"
#include "framework/perf.h"
#include "base/random.h"

namespace eat::cli {

namespace {

// One length's inputs, ready to run forward+backward, and its timings so far.
struct LengthCase : CallTimes {
  int64_t T;
  Tensor q, k, v, seed;
  std::vector<double> decay;

  explicit LengthCase(int64_t T_) : T(T_) {
    const int64_t B = 1, H = 8, d = 64;
    Generator gen(7);
    // Inputs like the model's: SiLU-activated q and k, and the spec's decays for 8 heads.
    q = silu(Tensor::randn({B, T, H, d}, gen));
    k = silu(Tensor::randn({B, T, H, d}, gen));
    v = Tensor::randn({B, T, H, d}, gen);
    seed = Tensor::randn({B, T, H, d}, gen, 1e-3);
    for (Tensor* t : {&q, &k, &v}) t->requires_grad_();
    for (int h = 0; h < H; ++h) decay.push_back(std::exp(-std::pow(2.0, -8.0 * (h + 1) / H)));
  }

  // Times one sample: forward+backward repeated until `tokens` tokens have gone through.
  void time(LightningImpl impl, int64_t tokens) {
    LightningOptions opt;
    opt.impl = impl;
    sample(std::max<int64_t>(1, (tokens + T - 1) / T), [&] {
      lightning_attention(q, k, v, decay, Tensor(), opt).first.backward(seed);
      for (Tensor* t : {&q, &k, &v}) t->zero_grad();
    });
  }

  void print(LightningImpl impl, double peak) const {
    const bool naive = impl == LightningImpl::naive;
    // The naive form does the full masked T x T products; count the chunked kernel's work for
    // both so GFLOP/s compare useful work.
    const double flop = flops::lightning(1, T, 8, 64, 64, 64, flops::Pass::forward_backward);
    char shape[64];
    std::snprintf(shape, sizeof shape, "B1 T%lld H8 d64", static_cast<long long>(T));
    print_row(BenchRow{naive ? "lightning naive fwd+bwd" : "lightning chunked fwd+bwd", shape, median_call(), flop / 1e9},
              peak);
    const double per_token = 1e6 / static_cast<double>(T);
    std::printf("%-34s %-26s %10.3f us/token median call (best sample %.3f, best call %.3f)\n", "", "",
                median_call() * per_token, best * per_token, best_call() * per_token);
  }
};

void bench_lightning(bool quick, int rounds) {
  if (rounds <= 0) rounds = quick ? 1 : 9;
  std::printf("eat bench lightning: %d OpenMP threads, f32, block 64\n", omp_get_max_threads());
  double peak = measure_gemm_peak_gflops(quick ? 1024 : 2048, 3);
  std::printf("GEMM peak (f32): %.1f GFLOP/s\n", peak);
  std::printf("%d rounds; a round runs every length in turn, each for as many tokens as the longest.\n"
              "Times are the median call (robust to a shared machine's slow spells and lucky gaps alike);\n"
              "the best sample (of equal token counts) and the best single call are shown beside it\n\n", rounds);
  std::printf("%-34s %-26s %10s %10s %8s\n", "kernel", "shape", "ms", "GFLOP/s", "of peak");
  std::vector<int64_t> lengths = quick ? std::vector<int64_t>{1024, 4096} : std::vector<int64_t>{1024, 4096, 16384, 65536};
  const int64_t cmp = quick ? 2048 : 8192;
  std::vector<LengthCase> cases;
  for (int64_t T : lengths) cases.emplace_back(T);
  cases.emplace_back(cmp);
  const int64_t sample_tokens = lengths.back();
  for (LengthCase& c : cases) c.time(LightningImpl::chunked, 0);  // warm-up: first touch of every buffer
  for (LengthCase& c : cases) c.reset();
  for (int r = 0; r < rounds; ++r)
    for (LengthCase& c : cases) c.time(LightningImpl::chunked, sample_tokens);
  for (const LengthCase& c : cases) c.print(LightningImpl::chunked, peak);
  LengthCase naive(cmp);
  naive.time(LightningImpl::naive, 0);
  naive.print(LightningImpl::naive, peak);
  const LengthCase &first = cases.front(), &last = cases[lengths.size() - 1];
  auto ratio = [&](double a, double b) { return (a / static_cast<double>(last.T)) / (b / static_cast<double>(first.T)); };
  std::printf("\ntime per token at T=%lld over T=%lld, median calls: %.2f (constant speed means 1)\n",
              static_cast<long long>(last.T), static_cast<long long>(first.T),
              ratio(last.median_call(), first.median_call()));
  std::printf("  the same from the best sample: %.2f; from the best call: %.2f\n", ratio(last.best, first.best),
              ratio(last.best_call(), first.best_call()));
  std::printf("chunked over naive at T=%lld: %.1fx faster (median calls)\n", static_cast<long long>(cmp),
              naive.median_call() / cases.back().median_call());
}

}  // namespace

void add_bench_lightning_command(CLI::App& bench) {
  add_sweep_bench(bench, "lightning", "Lightning Attention-2: time per token from 1K to 64K, chunked vs naive",
                  "Rounds to take the best of (default 9, --quick 1)", bench_lightning);
}

}  // namespace eat::cli
