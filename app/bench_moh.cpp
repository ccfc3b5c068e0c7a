// eat bench moh: forward+backward time of MoH's query-sparse attention (gated_attention) with
// 100%, 75% and 50% of the heads active per token, beside the dense softmax attention kernel at
// the same shapes (B = 1, H = 8, d = 64, T = 1K, 4K, 16K, f32 on the CPU). A token's active heads
// are drawn at random, a fixed number per token, as a router's top-k would pick them. Rounds of
// equal-token samples, the kernels interleaved within each round, median calls.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <vector>

#include "app/bench_util.h"
#include "app/commands.h"
#include "base/random.h"
#include "framework/flops.h"
#include "framework/ops.h"
#include "framework/perf.h"

namespace eat::cli {

namespace {

constexpr int64_t kHeads = 8, kDim = 64;

// Gates [1, T, H]: `active` heads per token at random (value 1), the others 0.
Tensor random_gates(int64_t T, int64_t active, Generator& gen) {
  std::vector<float> g(static_cast<size_t>(T * kHeads), 0.0f);
  std::vector<int64_t> heads(kHeads);
  for (int64_t t = 0; t < T; ++t) {
    std::iota(heads.begin(), heads.end(), 0);
    for (int64_t i = 0; i < active; ++i) {  // a partial Fisher-Yates shuffle
      const int64_t j = i + static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(kHeads - i));
      std::swap(heads[i], heads[j]);
      g[static_cast<size_t>(t * kHeads + heads[i])] = 1.0f;
    }
  }
  return Tensor::from_vector<float>(g, {1, T, kHeads});
}

// One kernel at one length: dense attention (active 0) or gated attention with `active` of the
// 8 heads per token.
struct GateCase : CallTimes {
  int64_t active, T;
  Tensor q, k, v, gates, seed;

  GateCase(int64_t active_, int64_t T_) : active(active_), T(T_) {
    Generator gen(7);
    q = Tensor::randn({1, T, kHeads, kDim}, gen).requires_grad_();
    k = Tensor::randn({1, T, kHeads, kDim}, gen).requires_grad_();
    v = Tensor::randn({1, T, kHeads, kDim}, gen).requires_grad_();
    seed = Tensor::randn({1, T, kHeads, kDim}, gen, 1e-3);
    if (active > 0) gates = random_gates(T, active, gen).requires_grad_();
  }
  void time(int64_t tokens) {
    sample(std::max<int64_t>(1, (tokens + T - 1) / T), [&] {
      (active > 0 ? gated_attention(q, k, v, gates) : attention(q, k, v)).backward(seed);
      for (Tensor* t : {&q, &k, &v, &gates})
        if (t->defined()) t->zero_grad();
    });
  }
  // The attended pairs of the active (token, head) pairs.
  double flop() const {
    const double share = active > 0 ? static_cast<double>(active) / kHeads : 1.0;
    return share * flops::attention(1, T, kHeads, kDim, kDim, true, -1, flops::Pass::forward_backward);
  }
  void print(double peak) const {
    char name[64], shape[64];
    if (active > 0)
      std::snprintf(name, sizeof name, "gated attention %3lld%% fwd+bwd", static_cast<long long>(100 * active / kHeads));
    else
      std::snprintf(name, sizeof name, "dense attention fwd+bwd");
    std::snprintf(shape, sizeof shape, "B1 T%lld H8 d64", static_cast<long long>(T));
    print_row(BenchRow{name, shape, median_call(), flop() / 1e9}, peak);
  }
};

void bench_moh(bool quick, int rounds) {
  if (rounds <= 0) rounds = quick ? 1 : 3;
  std::printf("eat bench moh: %d OpenMP threads, f32, causal attention B=1 H=8 d=64\n", omp_get_max_threads());
  const double peak = measure_gemm_peak_gflops(quick ? 1024 : 2048, 3);
  std::printf("GEMM peak (f32): %.1f GFLOP/s\n", peak);
  std::printf("%d rounds, the kernels interleaved in each; times are the median call. GFLOP/s counts the\n"
              "active (token, head) pairs only.\n\n", rounds);
  std::printf("%-34s %-26s %10s %10s %8s\n", "kernel", "shape", "ms", "GFLOP/s", "of peak");
  const std::vector<int64_t> lengths = quick ? std::vector<int64_t>{1024} : std::vector<int64_t>{1024, 4096, 16384};
  std::vector<std::vector<GateCase>> kernels;
  for (int64_t active : {0, 8, 6, 4}) {
    kernels.emplace_back();
    for (int64_t T : lengths) kernels.back().emplace_back(active, T);
  }
  sweep_lengths(kernels, rounds);
  for (const auto& cases : kernels)
    for (const GateCase& c : cases) c.print(peak);
  std::printf("\n");
  for (size_t i = 0; i < lengths.size(); ++i) {
    const double dense = kernels[0][i].median_call();
    std::printf("T=%lld: dense over gated, median calls: 100%% %.2fx, 75%% %.2fx, 50%% %.2fx\n",
                static_cast<long long>(lengths[i]), dense / kernels[1][i].median_call(),
                dense / kernels[2][i].median_call(), dense / kernels[3][i].median_call());
  }
}

}  // namespace

void add_bench_moh_command(CLI::App& bench) {
  add_sweep_bench(bench, "moh", "MoH's gated attention at 100%, 75% and 50% of heads active against dense attention",
                  "Rounds (default 3, --quick 1)", bench_moh);
}

}  // namespace eat::cli
