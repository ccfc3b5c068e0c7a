#include "framework/train/step_log.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "framework/build_target.h"
#include "framework/comm/comm_stats.h"
#include "framework/perf.h"
#include "framework/storage.h"

namespace eat {

namespace {

std::string hms(double seconds) {
  long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

std::string human_bytes(int64_t bytes) {
  char buf[32];
  if (bytes < 1024) std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  else if (bytes < 1024 * 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
  else std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

// What this rank sent in one step, per label (each layer's sequence-parallel traffic, then the
// gradient reduction), and the time it spent inside those operations.
void print_comm_counts(int rank) {
  std::printf("  communication of one step on rank %d (payload sent, time inside):\n", rank);
  for (const auto& [label, c] : comm_counts())
    std::printf("    %-20s %12s in %4lld ops, %8.2f ms\n", label.c_str(), human_bytes(c.bytes).c_str(),
                static_cast<long long>(c.calls), 1e3 * c.seconds);
  std::fflush(stdout);
}

// The console line over the window's steps: their mean time gives tokens/s, MFU and the ETA.
void print_step_line(const TrainingRun& run, const StepNumbers& step) {
  const LogWindow& w = run.window;
  const int64_t steps = run.recipe.train.steps;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run.start_time).count();
  const double per_step = w.seconds / static_cast<double>(w.steps);
  const double tps = static_cast<double>(run.layout.tokens_per_step) / per_step;
  char comm_share[32] = "";
  if (run.world.size() > 1) std::snprintf(comm_share, sizeof comm_share, " | comm %.1f%%", 100.0 * w.comm_seconds / w.seconds);
  char aux[32] = "";
  if (!step.aux.empty()) std::snprintf(aux, sizeof aux, " | aux %.4f", step.aux_loss);
  std::printf("step %lld/%lld | loss %.4f%s | lr %.2e | grad norm %.3f | %.0f tok/s | mfu %.1f%%%s | %s elapsed | eta %s\n",
              static_cast<long long>(step.step), static_cast<long long>(steps), step.loss, aux, step.lr, step.grad_norm,
              tps, 100.0 * run.flops_per_token * tps / (run.peak_gflops * 1e9), comm_share, hms(elapsed).c_str(),
              hms(per_step * static_cast<double>(steps - step.step)).c_str());
  std::fflush(stdout);
}

}  // namespace

void print_run_header(const TrainingRun& run) {
  if (!run.say) return;
  const Recipe& recipe = run.recipe;
  const ModelConfig& mc = run.model_config;
  const BatchLayout& l = run.layout;
  std::printf("eat train: %s | family %s | %lld parameters | d_model %lld, %lld layers, %lld heads\n",
              recipe.run.name.c_str(), recipe.model.family.c_str(), static_cast<long long>(run.model->num_parameters()),
              static_cast<long long>(mc.d_model), static_cast<long long>(mc.n_layers), static_cast<long long>(mc.n_heads));
  std::printf("  %lld tokens/step (%lld seqs x %lld), micro-batch %lld x %lld accumulation | world %d (dp %lld, sp %lld) | "
              "%d threads | peak %.0f GFLOP/s\n",
              static_cast<long long>(l.tokens_per_step), static_cast<long long>(recipe.train.global_batch),
              static_cast<long long>(l.seq_len), static_cast<long long>(l.micro), static_cast<long long>(l.n_micro),
              run.world.size(), static_cast<long long>(l.dp), static_cast<long long>(recipe.parallel.sp),
              omp_get_max_threads(), run.peak_gflops);
  // The CPU target beside the peak: a portable build measures (and reaches) a lower one.
  std::printf("  %s, %s%s | peak from %s | CPU code built for %s\n", device_name(run.device),
              recipe.train.precision.c_str(), recipe.train.tf32 ? " (TF32 matmuls)" : "", run.peak_source.c_str(),
              cpu_build_target().c_str());
  std::printf("  run directory %s%s\n", run.result.run_dir.c_str(),
              run.resume_dir.empty() ? "" : (", resumed from " + run.resume_dir).c_str());
  std::fflush(stdout);
}

nlohmann::json step_metrics_line(const TrainingRun& run, const StepNumbers& step) {
  const double tokens_per_s = static_cast<double>(run.layout.tokens_per_step) / step.seconds;
  const double mfu = run.flops_per_token * tokens_per_s / (run.peak_gflops * 1e9);
  nlohmann::json line = {{"step", step.step}, {"loss", step.loss}, {"lr", step.lr}, {"grad_norm", step.grad_norm},
                         {"tokens_per_s", tokens_per_s}, {"mfu", mfu}, {"step_seconds", step.seconds}};
  add_aux_fields(line, step.aux);
  if (run.world.size() > 1) {
    // Time inside collectives (waiting for slower ranks included) over the step's wall time.
    const CommCount comm = comm_total();
    line["comm_share"] = comm.seconds / step.seconds;
    line["comm_bytes"] = comm.bytes;
  }
  if (run.device == Device::cuda) {
    const AllocatorStats mem = device_memory_stats();
    line["device_peak_allocated"] = mem.peak_allocated;
    line["device_peak_reserved"] = mem.peak_reserved;
  }
  return line;
}

void log_step(TrainingRun& run, const StepNumbers& step) {
  const bool first = step.step == run.result.start_step + 1;
  if (run.say && first && run.world.size() > 1) print_comm_counts(run.world.rank());
  if (run.say && first && run.device == Device::cuda) {
    std::printf("  device memory after the first step: %s\n", device_memory_summary().c_str());
    std::fflush(stdout);
  }
  run.record(step_metrics_line(run, step));
  run.window.seconds += step.seconds;
  run.window.comm_seconds += comm_total().seconds;
  run.window.steps += 1;
  if (run.say && (step.step % run.recipe.log.every == 0 || step.step == run.recipe.train.steps)) {
    print_step_line(run, step);
    run.window = {};
  }
}

void print_run_footer(const TrainingRun& run) {
  if (!run.say || run.device != Device::cuda) return;
  std::printf("device memory at the end: %s\n", device_memory_summary().c_str());
  std::fflush(stdout);
}

}  // namespace eat
