// eat bench kernels: time, GFLOP/s and fraction of the machine's measured GEMM peak for the
// matmul path and the attention kernels. The peak is a large Eigen f32 GEMM measured in the same
// run, so the fractions compare like with like on any machine.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "framework/autograd.h"
#include "app/bench_util.h"
#include "app/commands.h"
#include "framework/ops.h"
#include "framework/perf.h"
#include "base/random.h"
#include "kernels/cpu/attention_flops.h"
#include "kernels/matmul.h"

namespace eat::cli {

namespace {

void bench_kernels(bool quick) {
  const int reps = quick ? 2 : 5;
  std::printf("eat bench kernels: %d OpenMP threads, f32\n", omp_get_max_threads());
  const int64_t peak_n = quick ? 1024 : 2048;
  double peak = measure_gemm_peak_gflops(peak_n, reps);
  std::printf("GEMM peak (Eigen f32 %lldx%lldx%lld): %.1f GFLOP/s\n\n", (long long)peak_n, (long long)peak_n,
              (long long)peak_n, peak);
  std::printf("%-34s %-26s %10s %10s %8s\n", "kernel", "shape", "ms", "GFLOP/s", "of peak");

  Generator gen(2);
  // matmul op (includes output allocation and dispatch) at the peak's size and below.
  for (int64_t n : quick ? std::vector<int64_t>{512, 1024} : std::vector<int64_t>{512, 1024, 2048}) {
    Tensor a = Tensor::randn({n, n}, gen), b = Tensor::randn({n, n}, gen);
    double s = best_seconds(reps, [&] { matmul(a, b); });
    print_row(BenchRow{"matmul", std::to_string(n) + "^3", s, 2.0 * n * n * n / 1e9}, peak);
  }
  // linear forward + backward at a transformer MLP shape: 4096 tokens, 768 -> 3072.
  {
    const int64_t rows = quick ? 1024 : 4096, in = 768, out = 3072;
    Tensor x = Tensor::randn({rows, in}, gen), w = Tensor::randn({out, in}, gen, 0.02);
    x.requires_grad_();
    w.requires_grad_();
    Tensor seed = Tensor::randn({rows, out}, gen);
    double s = best_seconds(reps, [&] {
      linear(x, w).backward(seed);
      x.zero_grad();
      w.zero_grad();
    });
    print_row(BenchRow{"linear fwd+bwd", std::to_string(rows) + "x" + std::to_string(in) + "->" + std::to_string(out), s,
               3 * 2.0 * rows * in * out / 1e9},
              peak);
  }
  // attention: naive vs tiled, full causal and sliding window, forward + backward.
  struct Case {
    AttentionImpl impl;
    int64_t t, window;
  };
  std::vector<Case> cases = quick ? std::vector<Case>{{AttentionImpl::naive, 512, -1}, {AttentionImpl::tiled, 512, -1},
                                                      {AttentionImpl::tiled, 2048, 128}}
                                  : std::vector<Case>{{AttentionImpl::naive, 1024, -1}, {AttentionImpl::tiled, 1024, -1},
                                                      {AttentionImpl::naive, 2048, -1}, {AttentionImpl::tiled, 2048, -1},
                                                      {AttentionImpl::tiled, 4096, -1}, {AttentionImpl::tiled, 8192, 128}};
  const int64_t B = 1, H = 8, d = 64;
  for (const Case& c : cases) {
    Tensor q = Tensor::randn({B, c.t, H, d}, gen), k = Tensor::randn({B, c.t, H, d}, gen),
           v = Tensor::randn({B, c.t, H, d}, gen), seed = Tensor::randn({B, c.t, H, d}, gen);
    for (Tensor* t : {&q, &k, &v}) t->requires_grad_();
    AttentionOptions opt;
    opt.impl = c.impl;
    opt.window_left = c.window;
    double s = best_seconds(reps, [&] {
      attention(q, k, v, opt).backward(seed);
      for (Tensor* t : {&q, &k, &v}) t->zero_grad();
    });
    double flop = cpu::attention_flops(B, c.t, H, d, d, true, c.window, true);
    std::string name = std::string("attention ") + (c.impl == AttentionImpl::naive ? "naive" : "tiled") +
                       (c.window >= 0 ? " window " + std::to_string(c.window) : " causal") + " fwd+bwd";
    print_row(BenchRow{name, "B1 T" + std::to_string(c.t) + " H8 d64", s, flop / 1e9}, peak);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Measure kernel speed (time, GFLOP/s, fraction of GEMM peak)");
  bench->require_subcommand(1);
  auto* kernels = bench->add_subcommand("kernels", "matmul and attention kernels against the measured GEMM peak");
  auto quick = std::make_shared<bool>(false);
  kernels->add_flag("--quick", *quick, "Smaller sizes and fewer repetitions (a smoke run)");
  auto* threads = kernels->add_option("--threads", "OpenMP threads (default: all cores)")->check(CLI::PositiveNumber);
  kernels->callback([quick, threads] {
    if (threads->count()) omp_set_num_threads(threads->as<int>());
    bench_kernels(*quick);
  });
  add_bench_lightning_command(*bench);
  add_bench_lightning_cuda_command(*bench);
}

}  // namespace eat::cli
