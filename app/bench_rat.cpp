// eat bench rat: forward+backward time per token of one RAT layer as the sequence grows, at chunk
// lengths 16 and 64, beside one softmax attention layer (the tiled kernel) at the same shapes: the
// protocol of the RAT paper's layer benchmark (a whole layer, its projections included), on the
// CPU in f32, at the spec's small config (d_model 768, 12 heads of 64, batch 1). RAT's attention
// work grows as T^2 / L, softmax's as T^2; the projections are the same per token for both. Rounds
// of equal-token samples and median calls, as eat bench lightning and eat bench based.
#include <omp.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "app/bench_util.h"
#include "app/commands.h"
#include "base/random.h"
#include "framework/autograd.h"
#include "framework/flops.h"
#include "framework/perf.h"
#include "models/rat.h"
#include "models/transformer.h"

namespace eat::cli {

namespace {

constexpr int64_t kModel = 768, kHeads = 12;

ModelConfig layer_config() {
  ModelConfig c;
  c.family = "rat";
  c.d_model = kModel;
  c.n_heads = kHeads;
  c.n_layers = 12;
  for (const OptionSpec& o : find_family("rat")->options) c.options.set(o.name, o.default_value);
  return c;
}

// One layer (RAT at one chunk length, or softmax attention: chunk 0) at one length.
struct LayerCase : CallTimes {
  int64_t chunk, T;
  std::shared_ptr<Module> layer;
  Tensor x, seed;

  LayerCase(int64_t chunk_, int64_t T_, std::shared_ptr<Module> layer_)
      : chunk(chunk_), T(T_), layer(std::move(layer_)) {
    Generator gen(7);
    x = Tensor::randn({1, T, kModel}, gen).requires_grad_();
    seed = Tensor::randn({1, T, kModel}, gen, 1e-3);
  }
  Tensor forward() const {
    if (chunk > 0) return static_cast<const models::RatLayer&>(*layer).forward(x);
    return static_cast<const models::CausalSelfAttention&>(*layer).forward(x);
  }
  void time(int64_t tokens) {
    sample(std::max<int64_t>(1, (tokens + T - 1) / T), [&] {
      forward().backward(seed);
      x.zero_grad();
      for (auto& p : layer->parameters()) p.tensor.zero_grad();
    });
  }
  double flop() const {
    using flops::Pass;
    const int64_t d = kModel / kHeads, qk = 2 * d;
    if (chunk == 0)
      return flops::linear(T, kModel, 4 * kModel, Pass::forward_backward) +
             flops::attention(1, T, kHeads, d, d, true, -1, Pass::forward_backward);
    return flops::linear(T, kModel, 4 * kModel + 2 * qk, Pass::forward_backward) +
           flops::summary_attention(1, T, kHeads, d, d, T / chunk, chunk, 0, Pass::forward_backward);
  }
  double us_per_token() const { return median_call() * 1e6 / static_cast<double>(T); }
  void print(double peak) const {
    char name[64], shape[64];
    if (chunk > 0)
      std::snprintf(name, sizeof name, "rat layer L=%lld fwd+bwd", static_cast<long long>(chunk));
    else
      std::snprintf(name, sizeof name, "softmax layer fwd+bwd");
    std::snprintf(shape, sizeof shape, "B1 T%lld D768 H12", static_cast<long long>(T));
    print_row(BenchRow{name, shape, median_call(), flop() / 1e9}, peak);
    std::printf("%-34s %-26s %10.3f us/token median call (best call %.3f)\n", "", "", us_per_token(),
                best_call() * 1e6 / static_cast<double>(T));
  }
};

void bench_rat(bool quick, int rounds) {
  if (rounds <= 0) rounds = quick ? 1 : 3;
  std::printf("eat bench rat: %d OpenMP threads, f32, one layer at d_model 768, 12 heads of 64, batch 1\n",
              omp_get_max_threads());
  const double peak = measure_gemm_peak_gflops(quick ? 1024 : 2048, 3);
  std::printf("GEMM peak (f32): %.1f GFLOP/s\n", peak);
  std::printf(
      "%d rounds; a round runs every length of a layer in turn, each for as many tokens as its longest.\n"
      "Times are the median call. Softmax attention is O(T^2): it stops at %s.\n\n",
      rounds, quick ? "4K" : "16K");
  std::printf("%-34s %-26s %10s %10s %8s\n", "layer", "shape", "ms", "GFLOP/s", "of peak");
  const std::vector<int64_t> rat_lengths =
      quick ? std::vector<int64_t>{1024, 4096} : std::vector<int64_t>{1024, 4096, 16384, 65536};
  const std::vector<int64_t> softmax_lengths =
      quick ? std::vector<int64_t>{1024, 4096} : std::vector<int64_t>{1024, 4096, 16384};
  ModelConfig c = layer_config();
  Generator gen(1);
  std::vector<std::vector<LayerCase>> kernels;
  for (int64_t chunk : {16, 64}) {
    c.options.set("chunk", chunk);
    auto layer = std::make_shared<models::RatLayer>(c, models::RatOptions::from(c), gen);
    kernels.emplace_back();
    for (int64_t T : rat_lengths) kernels.back().emplace_back(chunk, T, layer);
  }
  auto softmax = std::make_shared<models::CausalSelfAttention>(c, models::RatOptions::from(c).window, gen);
  softmax->attention_options.window_left = -1;
  kernels.emplace_back();
  for (int64_t T : softmax_lengths) kernels.back().emplace_back(0, T, softmax);
  sweep_lengths(kernels, rounds);
  for (const auto& cases : kernels)
    for (const LayerCase& k : cases) k.print(peak);
  std::printf("\n");
  const std::vector<LayerCase>& soft = kernels.back();
  for (size_t i = 0; i + 1 < kernels.size(); ++i) {
    const std::vector<LayerCase>& rat = kernels[i];
    std::printf("rat L=%lld: time per token at T=%lld over T=%lld: %.2f\n", static_cast<long long>(rat.front().chunk),
                static_cast<long long>(rat.back().T), static_cast<long long>(rat.front().T),
                rat.back().us_per_token() / rat.front().us_per_token());
    for (const LayerCase& s : soft)
      for (const LayerCase& r : rat)
        if (r.T == s.T)
          std::printf("  T=%lld: rat L=%lld is %.2fx faster than softmax attention (median calls)\n",
                      static_cast<long long>(r.T), static_cast<long long>(r.chunk), s.median_call() / r.median_call());
  }
}

}  // namespace

void add_bench_rat_command(CLI::App& bench) {
  add_sweep_bench(bench, "rat", "One RAT layer (L = 16, 64) against softmax attention, time per token from 1K to 64K",
                  "Rounds (default 3, --quick 1)", bench_rat);
}

}  // namespace eat::cli
