// eat bench lightning: forward+backward time per token of decayed linear attention (Lightning
// Attention-2) as the sequence grows -- the chunked kernel should keep a constant time per token
// -- and the chunked kernel against the naive O(T^2) form.
#include <omp.h>

#include <cstdio>
#include <vector>

#include "framework/cli/bench_util.h"
#include "framework/cli/commands.h"
#include "framework/ops.h"
#include "framework/perf.h"
#include "framework/random.h"
#include "kernels/cpu/lightning_flops.h"

namespace eat::cli {

namespace {

// Returns seconds per fwd+bwd at this length.
double time_case(LinearAttentionImpl impl, int64_t T, int reps, double peak) {
  const int64_t B = 1, H = 8, d = 64;
  Generator gen(7);
  // Inputs like the model's: SiLU-activated q and k, and the spec's decays for 8 heads.
  Tensor q = silu(Tensor::randn({B, T, H, d}, gen)), k = silu(Tensor::randn({B, T, H, d}, gen)),
         v = Tensor::randn({B, T, H, d}, gen), seed = Tensor::randn({B, T, H, d}, gen, 1e-3);
  for (Tensor* t : {&q, &k, &v}) t->requires_grad_();
  std::vector<double> decay;
  for (int h = 0; h < H; ++h) decay.push_back(std::exp(-std::pow(2.0, -8.0 * (h + 1) / H)));
  LinearAttentionOptions opt;
  opt.impl = impl;
  double s = best_seconds(reps, [&] {
    lightning_attention(q, k, v, decay, Tensor(), opt).first.backward(seed);
    for (Tensor* t : {&q, &k, &v}) t->zero_grad();
  });
  const bool naive = impl == LinearAttentionImpl::naive;
  // The naive form does the full masked T x T products; count the chunked kernel's work for both
  // so GFLOP/s compare useful work.
  double flop = cpu::lightning_flops(B, T, H, d, d, 64, true);
  char shape[64];
  std::snprintf(shape, sizeof shape, "B1 T%lld H8 d64", static_cast<long long>(T));
  print_row(BenchRow{naive ? "lightning naive fwd+bwd" : "lightning chunked fwd+bwd", shape, s, flop / 1e9}, peak);
  std::printf("%-34s %-26s %10.3f us/token\n", "", "", s / static_cast<double>(T) * 1e6);
  return s;
}

void bench_lightning(bool quick) {
  const int reps = quick ? 1 : 3;
  std::printf("eat bench lightning: %d OpenMP threads, f32, block 64\n", omp_get_max_threads());
  double peak = measure_gemm_peak_gflops(quick ? 1024 : 2048, reps);
  std::printf("GEMM peak (Eigen f32): %.1f GFLOP/s\n\n", peak);
  std::printf("%-34s %-26s %10s %10s %8s\n", "kernel", "shape", "ms", "GFLOP/s", "of peak");
  std::vector<int64_t> lengths = quick ? std::vector<int64_t>{1024, 4096} : std::vector<int64_t>{1024, 4096, 16384, 65536};
  std::vector<double> per_token;
  for (int64_t T : lengths) per_token.push_back(time_case(LinearAttentionImpl::chunked, T, reps, peak) / static_cast<double>(T));
  const int64_t cmp = quick ? 2048 : 8192;
  double chunked = time_case(LinearAttentionImpl::chunked, cmp, reps, peak);
  double naive = time_case(LinearAttentionImpl::naive, cmp, 1, peak);
  std::printf("\ntime per token at T=%lld over T=%lld: %.2f (constant speed means 1)\n",
              static_cast<long long>(lengths.back()), static_cast<long long>(lengths.front()),
              per_token.back() / per_token.front());
  std::printf("chunked over naive at T=%lld: %.1fx faster\n", static_cast<long long>(cmp), naive / chunked);
}

}  // namespace

void add_bench_lightning_command(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("lightning", "Lightning Attention-2: time per token from 1K to 64K, chunked vs naive");
  auto quick = std::make_shared<bool>(false);
  cmd->add_flag("--quick", *quick, "Smaller sizes (a smoke run)");
  auto threads = std::make_shared<int>(0);
  cmd->add_option("--threads", *threads, "OpenMP threads (default: all cores)");
  cmd->callback([quick, threads] {
    if (*threads > 0) omp_set_num_threads(*threads);
    bench_lightning(*quick);
  });
}

}  // namespace eat::cli
