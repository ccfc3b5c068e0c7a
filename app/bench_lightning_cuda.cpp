// eat bench lightning-cuda: forward+backward time of the CUDA Lightning Attention-2 kernel in
// bf16 at B=8, H=32, d=128 from 2K to 32K tokens, next to flash (softmax) attention at the same
// shapes: linear attention should keep a constant time per token where softmax attention grows
// linearly. GFLOP/s count the work each kernel must do (framework/flops.h).
#include <cmath>
#include <cstdio>
#include <vector>

#include "app/bench_util.h"
#include "app/commands.h"
#include "framework/ops.h"
#include "base/random.h"
#include "framework/storage.h"
#include "framework/flops.h"
#ifdef EAT_WITH_CUDA
#include "runtime/cuda/stream.h"
#endif

namespace eat::cli {

namespace {

#ifdef EAT_WITH_CUDA
constexpr int64_t B = 8, H = 32, d = 128;

void row(const char* kernel, int64_t T, double seconds, double flop) {
  char shape[64];
  std::snprintf(shape, sizeof shape, "B%lld T%lld H%lld d%lld", static_cast<long long>(B), static_cast<long long>(T),
                static_cast<long long>(H), static_cast<long long>(d));
  std::printf("%-30s %-26s %10.3f %12.1f %12.3f\n", kernel, shape, seconds * 1e3, flop / seconds / 1e9,
              seconds / static_cast<double>(T) * 1e6);
  std::fflush(stdout);
}

// Seconds per forward+backward of `step` (which runs on the compute stream), synchronised.
template <typename F> double time_gpu(int reps, F&& step) {
  return best_seconds(reps, [&] {
    step();
    cuda::sync_compute();
  });
}

void bench_lightning_cuda(bool quick) {
  const int reps = quick ? 1 : 3;
  std::printf("eat bench lightning-cuda: bf16 on CUDA, chunk 64, causal\n\n");
  std::printf("%-30s %-26s %10s %12s %12s\n", "kernel", "shape", "ms", "GFLOP/s", "us/token");
  Generator gen(7);
  std::vector<double> decay;  // the spec's slopes for H heads (layer 0)
  for (int64_t h = 0; h < H; ++h) decay.push_back(std::exp(-std::pow(2.0, -8.0 * static_cast<double>(h + 1) / H)));
  const std::vector<int64_t> lengths = quick ? std::vector<int64_t>{2048} : std::vector<int64_t>{2048, 8192, 32768};
  for (int64_t T : lengths) {
    auto input = [&](double stddev) {
      return Tensor::randn({B, T, H, d}, gen, stddev).to(DType::bf16).to(Device::cuda).requires_grad_();
    };
    Tensor q = input(0.5), k = input(0.5), v = input(1.0);
    Tensor seed = Tensor::randn({B, T, H, d}, gen, 1e-3).to(DType::bf16).to(Device::cuda);
    auto clear = [&] {
      for (Tensor* t : {&q, &k, &v}) t->zero_grad();
    };
    double s = time_gpu(reps, [&] {
      lightning_attention(q, k, v, decay).first.backward(seed);
      clear();
    });
    row("lightning fwd+bwd", T, s, flops::lightning(B, T, H, d, d, 64, flops::Pass::forward_backward));
    s = time_gpu(reps, [&] {
      attention(q, k, v).backward(seed);
      clear();
    });
    row("flash attention fwd+bwd", T, s, flops::attention(B, T, H, d, d, true, -1, flops::Pass::forward_backward));
  }
}
#endif

}  // namespace

void add_bench_lightning_cuda_command(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("lightning-cuda", "Lightning Attention-2 and flash attention on CUDA, bf16, 2K to 32K tokens");
  auto quick = std::make_shared<bool>(false);
  cmd->add_flag("--quick", *quick, "Only T = 2K (a smoke run)");
  cmd->callback([quick] {
    if (!cuda_available()) {
      std::printf("eat bench lightning-cuda: no CUDA device (or eat built without CUDA); nothing to measure\n");
      return;
    }
#ifdef EAT_WITH_CUDA
    bench_lightning_cuda(*quick);
#endif
  });
}

}  // namespace eat::cli
