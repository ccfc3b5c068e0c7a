// eat bench titans: forward+backward time per token of Titans' memory ops as the sequence grows,
// for the linear memory and the two-layer MLP memory, each at chunk lengths 16 and 64: the memory
// learns in chunks and keeps a fixed-size state, so the time per token should stay flat from 1K
// to 64K tokens. On the CPU in f32 at the tiny recipes' head shape (4 heads of 64, MLP memory
// hidden 256, batch 1), with L2-normalised q and k as the model feeds them. Rounds of equal-token
// samples and median calls, as eat bench rat.
#include <omp.h>

#include <cstdio>
#include <vector>

#include "app/bench_util.h"
#include "app/commands.h"
#include "base/random.h"
#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/ops.h"
#include "framework/perf.h"

namespace eat::cli {

namespace {

constexpr int64_t kHeads = 4, kDim = 64, kHidden = 256;

// One memory op (MLP or linear) at one chunk length and one sequence length.
struct MemoryCase : CallTimes {
  bool mlp;
  int64_t chunk, T;
  Tensor q, k, v, theta, eta, alpha, w1, w2, seed;

  MemoryCase(bool mlp_, int64_t chunk_, int64_t T_) : mlp(mlp_), chunk(chunk_), T(T_) {
    Generator gen(7);
    const Shape heads{1, T, kHeads, kDim}, gates{1, T, kHeads};
    q = l2_normalize(Tensor::randn(heads, gen), 1e-6).detach().requires_grad_();
    k = l2_normalize(Tensor::randn(heads, gen), 1e-6).detach().requires_grad_();
    v = Tensor::randn(heads, gen, 0.1).requires_grad_();
    theta = Tensor::randn(gates, gen).requires_grad_();
    eta = Tensor::randn(gates, gen, 0.5, DType::f32).requires_grad_();
    alpha = Tensor::randn(gates, gen).requires_grad_();
    const int64_t first = mlp ? kHidden : kDim;
    w1 = Tensor::randn({kHeads, kDim, first}, gen, 0.1).requires_grad_();
    if (mlp) w2 = Tensor::randn({kHeads, kHidden, kDim}, gen, 0.1).requires_grad_();
    seed = Tensor::randn(heads, gen, 1e-3);
  }
  Tensor forward() const {
    const MemoryGateLogits gates{theta, eta, alpha};
    const NeuralMemoryOptions options{.chunk = chunk};
    if (mlp) return mlp_memory(q, k, v, gates, {w1, w2, Tensor(), Tensor()}, options).y;
    return linear_memory(q, k, v, gates, {w1, Tensor()}, options).y;
  }
  void time(int64_t tokens) {
    sample(std::max<int64_t>(1, (tokens + T - 1) / T), [&] {
      forward().backward(seed);
      for (const Tensor* t : {&q, &k, &v, &theta, &eta, &alpha, &w1, &w2})
        if (t->defined()) t->zero_grad();
    });
  }
  double flop() const {
    using flops::Pass;
    return mlp ? flops::mlp_memory(1, T, kHeads, kDim, kHidden, kDim, chunk, Pass::forward_backward)
               : flops::linear_memory(1, T, kHeads, kDim, kDim, chunk, Pass::forward_backward);
  }
  std::string name() const {
    return std::string(mlp ? "mlp memory" : "linear memory") + " b=" + std::to_string(chunk) + " fwd+bwd";
  }
  double us_per_token() const { return median_call() * 1e6 / static_cast<double>(T); }
  void print(double peak) const {
    char shape[64];
    std::snprintf(shape, sizeof shape, "B1 T%lld H4 d64%s", static_cast<long long>(T), mlp ? " h256" : "");
    print_row(BenchRow{name(), shape, median_call(), flop() / 1e9}, peak);
    std::printf("%-34s %-26s %10.3f us/token median call (best call %.3f)\n", "", "", us_per_token(),
                best_call() * 1e6 / static_cast<double>(T));
  }
};

void bench_titans(bool quick, int rounds) {
  if (rounds <= 0) rounds = quick ? 1 : 3;
  std::printf("eat bench titans: %d OpenMP threads, f32, the memory ops at 4 heads of 64 (MLP hidden 256), batch 1\n",
              omp_get_max_threads());
  const double peak = measure_gemm_peak_gflops(quick ? 1024 : 2048, 3);
  std::printf("GEMM peak (f32): %.1f GFLOP/s\n", peak);
  std::printf("%d rounds; a round runs every length of an op in turn, each for as many tokens as its longest.\n"
              "Times are the median call.\n\n",
              rounds);
  std::printf("%-34s %-26s %10s %10s %8s\n", "op", "shape", "ms", "GFLOP/s", "of peak");
  const std::vector<int64_t> lengths =
      quick ? std::vector<int64_t>{1024, 4096} : std::vector<int64_t>{1024, 4096, 16384, 65536};
  std::vector<std::vector<MemoryCase>> kernels;
  for (bool mlp : {false, true})
    for (int64_t chunk : {16, 64}) {
      kernels.emplace_back();
      for (int64_t T : lengths) kernels.back().emplace_back(mlp, chunk, T);
    }
  sweep_lengths(kernels, rounds);
  for (const auto& cases : kernels)
    for (const MemoryCase& c : cases) c.print(peak);
  std::printf("\n");
  for (const auto& cases : kernels)
    std::printf("%s: time per token at T=%lld over T=%lld: %.2f\n", cases.front().name().c_str(),
                static_cast<long long>(cases.back().T), static_cast<long long>(cases.front().T),
                cases.back().us_per_token() / cases.front().us_per_token());
}

}  // namespace

void add_bench_titans_command(CLI::App& bench) {
  add_sweep_bench(bench, "titans",
                  "Titans' memory ops (linear, MLP; chunks 16 and 64), time per token from 1K to 64K",
                  "Rounds (default 3, --quick 1)", bench_titans);
}

}  // namespace eat::cli
