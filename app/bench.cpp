// eat bench ops: forward+backward time of every row of the op table (framework/op_cases/) at its
// bench shapes, GFLOP/s from the row's FLOP formula (framework/flops.h) and the fraction of the
// machine's peak: on the CPU a large f32 GEMM measured in the same run, on CUDA the GPU's
// dense bf16 peak (framework/device_peak.h). A new op is timed by adding its row, not code here.
#include <omp.h>

#include <cstdio>
#include <string>
#include <vector>

#include "app/bench_util.h"
#include "app/commands.h"
#include "base/error.h"
#include "base/random.h"
#include "framework/device_peak.h"
#include "framework/op_cases/op_case.h"
#include "framework/perf.h"
#include "framework/storage.h"
#ifdef EAT_WITH_CUDA
#include "runtime/cuda/stream.h"
#endif

namespace eat::cli {

namespace {

struct BenchOptions {
  std::string op;  // one row, or every row when empty
  std::string device = "cpu";
  bool quick = false;
};

// Seconds of one forward+backward of `row` on inputs of `sizes`: best of `reps` after a warm-up.
double time_row(const op_cases::OpCase& row, const op_cases::Sizes& sizes, Device device, DType dtype, int reps) {
  Generator gen(2);
  std::vector<Tensor> inputs;
  for (Tensor t : op_cases::draw(sizes, gen, DType::f32)) {
    t = t.to(dtype);
    if (device == Device::cuda) t = t.to(Device::cuda);
    inputs.push_back(t.requires_grad_());
  }
  Tensor seed;
  return best_seconds(reps, [&] {
    Tensor out = row.call(inputs);
    if (!seed.defined()) {
      seed = Tensor::randn(out.shape(), gen, 1.0, DType::f32).to(dtype);
      if (device == Device::cuda) seed = seed.to(Device::cuda);
    }
    out.backward(seed);
    for (Tensor& t : inputs) t.zero_grad();
#ifdef EAT_WITH_CUDA
    if (device == Device::cuda) cuda::sync_compute();
#endif
  });
}

void bench_ops(const BenchOptions& opt) {
  const bool on_cuda = opt.device == "cuda";
  if (on_cuda && !cuda_available()) {
    std::printf("eat bench ops: no CUDA device (or eat built without CUDA); nothing to measure\n");
    return;
  }
  std::vector<const op_cases::OpCase*> rows;
  if (!opt.op.empty()) rows.push_back(&op_cases::find(opt.op));
  else
    for (const op_cases::OpCase& row : op_cases::all()) rows.push_back(&row);

  const Device device = on_cuda ? Device::cuda : Device::cpu;
  const DType dtype = on_cuda ? DType::bf16 : DType::f32;
  const int reps = opt.quick ? 2 : 5;
  double peak = 0;
  if (on_cuda) {
    const DevicePeak p = device_peak_gflops(DType::bf16, false);
    peak = p.gflops;
    std::printf("eat bench ops: bf16 on CUDA; peak %.0f GFLOP/s (%s)\n", peak, p.source.c_str());
  } else {
    const int64_t n = opt.quick ? 1024 : 2048;
    peak = measure_gemm_peak_gflops(n, reps);
    std::printf("eat bench ops: f32 on the CPU, %d OpenMP threads; GEMM peak (f32 %lld^3) %.1f GFLOP/s\n",
                omp_get_max_threads(), static_cast<long long>(n), peak);
  }
  std::printf("forward+backward per call, best of %d; GFLOP/s count the products an op must do (none for\n"
              "elementwise and row-wise ops)%s\n\n", reps, opt.quick ? "; --quick: the first bench shape of each op" : "");
  std::printf("%-34s %10s %10s %8s  %s\n", "op", "ms", "GFLOP/s", "of peak", "inputs");
  for (const op_cases::OpCase* row : rows) {
    if (on_cuda && !row->cuda) {
      if (!opt.op.empty()) std::printf("%-34s has no CUDA kernels\n", row->name.c_str());
      continue;
    }
    if (row->bench.empty() && !opt.op.empty()) std::printf("%-34s has no bench shapes\n", row->name.c_str());
    for (size_t i = 0; i < row->bench.size() && !(opt.quick && i > 0); ++i) {
      const op_cases::Sizes& sizes = row->bench[i];
      const double s = time_row(*row, sizes, device, dtype, reps);
      if (row->flops) {
        const double gflops = row->flops(op_cases::shapes_of(sizes)) / s / 1e9;
        std::printf("%-34s %10.3f %10.1f %7.1f%%  %s\n", row->name.c_str(), s * 1e3, gflops, 100 * gflops / peak,
                    op_cases::describe(sizes).c_str());
      } else {
        std::printf("%-34s %10.3f %10s %8s  %s\n", row->name.c_str(), s * 1e3, "-", "-", op_cases::describe(sizes).c_str());
      }
      std::fflush(stdout);
    }
  }
}

}  // namespace

void add_sweep_bench(CLI::App& bench, const std::string& name, const std::string& help, const std::string& rounds_help,
                     std::function<void(bool quick, int rounds)> run) {
  auto* cmd = bench.add_subcommand(name, help);
  auto quick = std::make_shared<bool>(false);
  cmd->add_flag("--quick", *quick, "Smaller sizes (a smoke run)");
  auto threads = std::make_shared<int>(0);
  cmd->add_option("--threads", *threads, "OpenMP threads (default: all cores)");
  auto rounds = std::make_shared<int>(0);
  cmd->add_option("--rounds", *rounds, rounds_help)->check(CLI::PositiveNumber);
  cmd->callback([quick, threads, rounds, run = std::move(run)] {
    if (*threads > 0) omp_set_num_threads(*threads);
    run(*quick, *rounds);
  });
}

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Measure kernel speed (time, GFLOP/s, fraction of peak)");
  bench->require_subcommand(1);
  auto* ops = bench->add_subcommand("ops", "Every op of the op table forward+backward at its bench shapes, against the peak");
  auto opt = std::make_shared<BenchOptions>();
  ops->add_option("--op", opt->op, "Only this op (a row name of the op table, e.g. \"attention window\")");
  ops->add_option("--device", opt->device, "cpu (f32) or cuda (bf16)")->check(CLI::IsMember({"cpu", "cuda"}));
  ops->add_flag("--quick", opt->quick, "The first bench shape of each op and fewer repetitions (a smoke run)");
  auto* threads = ops->add_option("--threads", "OpenMP threads (default: all cores)")->check(CLI::PositiveNumber);
  ops->callback([opt, threads] {
    if (threads->count()) omp_set_num_threads(threads->as<int>());
    bench_ops(*opt);
  });
  add_bench_lightning_command(*bench);
  add_bench_lightning_cuda_command(*bench);
  add_bench_based_command(*bench);
  add_bench_rat_command(*bench);
  add_bench_moh_command(*bench);
  add_bench_titans_command(*bench);
  add_bench_train_command(*bench);
}

}  // namespace eat::cli
