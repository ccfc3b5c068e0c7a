// eat bench based: forward+backward time per token of BASED's Taylor linear attention as the
// sequence grows, the chunked kernel (whose time per token should stay flat) against the parallel
// O(T^2) one. B = 1, H = 8, f = 16, e = 64, f32 on the CPU; the protocol of eat bench lightning
// (rounds of equal-token samples, median calls).
#include <omp.h>

#include <cstdio>
#include <vector>

#include "app/bench_util.h"
#include "app/commands.h"
#include "base/random.h"
#include "framework/flops.h"
#include "framework/ops.h"
#include "framework/perf.h"

namespace eat::cli {

namespace {

constexpr int64_t kHeads = 8, kFeatures = 16, kValues = 64;

// One form at one length: inputs ready for forward+backward, and its timings so far.
struct FormCase : CallTimes {
  TaylorImpl impl;
  int64_t T;
  Tensor q, k, v, seed;

  FormCase(TaylorImpl impl_, int64_t T_) : impl(impl_), T(T_) {
    Generator gen(7);
    // q and k as from a projection of a normalised residual to the feature dim: scores s of
    // order one, where the quadratic term matters.
    q = Tensor::randn({1, T, kHeads, kFeatures}, gen, 0.5);
    k = Tensor::randn({1, T, kHeads, kFeatures}, gen, 0.5);
    v = Tensor::randn({1, T, kHeads, kValues}, gen);
    seed = Tensor::randn({1, T, kHeads, kValues}, gen, 1e-3);
    for (Tensor* t : {&q, &k, &v}) t->requires_grad_();
  }
  const char* name() const { return impl == TaylorImpl::chunked ? "taylor chunked fwd+bwd" : "taylor parallel fwd+bwd"; }
  double flop() const {
    return impl == TaylorImpl::chunked
               ? flops::taylor_chunked(1, T, kHeads, kFeatures, kValues, TaylorOptions{}.block, flops::Pass::forward_backward)
               : flops::taylor_parallel(1, T, kHeads, kFeatures, kValues, flops::Pass::forward_backward);
  }
  // One sample: forward+backward repeated until `tokens` tokens have gone through.
  void time(int64_t tokens) {
    TaylorOptions opt;
    opt.impl = impl;
    sample(std::max<int64_t>(1, (tokens + T - 1) / T), [&] {
      taylor_attention(q, k, v, Tensor(), opt).first.backward(seed);
      for (Tensor* t : {&q, &k, &v}) t->zero_grad();
    });
  }
  double us_per_token() const { return median_call() * 1e6 / static_cast<double>(T); }
  void print(double peak) const {
    char shape[64];
    std::snprintf(shape, sizeof shape, "B1 T%lld H8 f16 e64", static_cast<long long>(T));
    print_row(BenchRow{name(), shape, median_call(), flop() / 1e9}, peak);
    const double per_token = 1e6 / static_cast<double>(T);
    std::printf("%-34s %-26s %10.3f us/token median call (best sample %.3f, best call %.3f)\n", "", "",
                us_per_token(), best * per_token, best_call() * per_token);
  }
};

void bench_based(bool quick, int rounds) {
  if (rounds <= 0) rounds = quick ? 1 : 3;
  std::printf("eat bench based: %d OpenMP threads, f32, block %lld\n", omp_get_max_threads(),
              static_cast<long long>(TaylorOptions{}.block));
  const double peak = measure_gemm_peak_gflops(quick ? 1024 : 2048, 3);
  std::printf("GEMM peak (f32): %.1f GFLOP/s\n", peak);
  std::printf("%d rounds; a round runs every length of a form in turn, each for as many tokens as its longest.\n"
              "Times are the median call; the best sample and the best single call are shown beside it.\n"
              "The parallel form is O(T^2): it stops at %s.\n\n", rounds, quick ? "1K" : "8K");
  std::printf("%-34s %-26s %10s %10s %8s\n", "kernel", "shape", "ms", "GFLOP/s", "of peak");
  const std::vector<int64_t> chunked_lengths =
      quick ? std::vector<int64_t>{1024, 4096} : std::vector<int64_t>{1024, 4096, 16384, 65536};
  const std::vector<int64_t> parallel_lengths = quick ? std::vector<int64_t>{1024} : std::vector<int64_t>{1024, 4096, 8192};
  std::vector<std::vector<FormCase>> forms(2);
  for (int64_t T : chunked_lengths) forms[0].emplace_back(TaylorImpl::chunked, T);
  for (int64_t T : parallel_lengths) forms[1].emplace_back(TaylorImpl::parallel, T);
  sweep_lengths(forms, rounds);
  const std::vector<FormCase>& chunked = forms[0];
  const std::vector<FormCase>& parallel = forms[1];
  for (const FormCase& c : chunked) c.print(peak);
  for (const FormCase& c : parallel) c.print(peak);
  const FormCase &first = chunked.front(), &last = chunked.back();
  std::printf("\nchunked: time per token at T=%lld over T=%lld, median calls: %.2f (constant speed means 1)\n",
              static_cast<long long>(last.T), static_cast<long long>(first.T), last.us_per_token() / first.us_per_token());
  for (const FormCase& p : parallel)
    for (const FormCase& c : chunked)
      if (c.T == p.T)
        std::printf("chunked over parallel at T=%lld: %.2fx faster (median calls)\n", static_cast<long long>(c.T),
                    p.median_call() / c.median_call());
}

}  // namespace

void add_bench_based_command(CLI::App& bench) {
  add_sweep_bench(bench, "based", "BASED's Taylor attention: time per token from 1K to 64K, chunked vs parallel",
                  "Rounds (default 3, --quick 1)", bench_based);
}

}  // namespace eat::cli
