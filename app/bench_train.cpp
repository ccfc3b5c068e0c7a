// eat bench train RECIPE [--set K=V ...] [--against K=V ...] [--rounds N] [--warmup N] [--threads N]:
// whole training steps of a recipe, and their MFU against a GEMM peak measured beside each step.
// On a shared machine the rate of both moves from minute to minute, so a peak measured once at
// the start (as `eat train` does) and steps timed later give an MFU that is off by the drift
// between them; here each round times one 1024^3 f32 GEMM peak and one step back to back, and the
// MFU of a round is the ratio of the two. With --against, a second run (the recipe with those
// keys changed too) steps in the same rounds, and each round gives the ratio of the two runs'
// tokens/s, measured minutes apart at most by one step. Nothing is written: the runs' directories
// are a temporary one, removed at the end. One process (no mpirun).
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "app/commands.h"
#include "base/error.h"
#include "base/median.h"
#include "framework/build_target.h"
#include "framework/config/recipe.h"
#include "framework/perf.h"
#include "framework/train/resume.h"
#include "framework/train/step.h"
#include "framework/train/training_run.h"

namespace eat::cli {

namespace {

namespace fs = std::filesystem;

struct BenchTrainOptions {
  std::string recipe;
  std::vector<std::string> sets, against;
  int rounds = 5, warmup = 2, threads = 0;
};

// One run of the recipe with `sets`, set up to step `steps` times into `dir` at the recipe's seed.
std::unique_ptr<TrainingRun> start_run(const BenchTrainOptions& opt, std::vector<std::string> sets, const fs::path& dir,
                                       int steps) {
  // After the user's keys, so that they win: the run lives in `dir` whatever run.out_dir says (a
  // user's run directory is never touched), and the schedule's warm-up stays below train.steps
  // (the learning rate does not change a step's time).
  sets.insert(sets.end(), {"run.out_dir=" + dir.string(), "train.steps=" + std::to_string(steps), "schedule.warmup=0",
                           "eval.every=0", "checkpoint.every=0"});
  Recipe r = load_recipe(opt.recipe, sets);
  r.check_world(1);
  r.check_device();
  TrainOptions o;
  o.resume = "never";
  o.quiet = true;
  auto run = std::make_unique<TrainingRun>(r, o);
  resume_run(*run);
  return run;
}

struct RunTimes {
  std::vector<double> tokens_per_s, mfu;
};

void bench_train(const BenchTrainOptions& opt) {
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  const fs::path dir = fs::temp_directory_path() / ("eat-bench-train-" + std::to_string(::getpid()));
  struct RemoveDir {
    fs::path path;
    ~RemoveDir() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } remove_dir{dir};
  const int steps = opt.warmup + opt.rounds;
  std::vector<std::unique_ptr<TrainingRun>> runs;
  std::vector<std::vector<std::string>> sets = {opt.sets};
  if (!opt.against.empty()) {
    sets.push_back(opt.sets);
    sets.back().insert(sets.back().end(), opt.against.begin(), opt.against.end());
  }
  for (size_t i = 0; i < sets.size(); ++i) runs.push_back(start_run(opt, sets[i], dir / ("run" + std::to_string(i)), steps));
  const bool cpu = runs[0]->device == Device::cpu;

  std::printf("eat bench train %s: %d rounds after %d warm-up steps, %d OpenMP threads | CPU code built for %s\n",
              opt.recipe.c_str(), opt.rounds, opt.warmup, omp_get_max_threads(), cpu_build_target().c_str());
  for (size_t i = 0; i < runs.size(); ++i) {
    const TrainingRun& run = *runs[i];
    std::string changed;
    for (const std::string& s : sets[i]) changed += " --set " + s;
    std::printf("  %s: %s, %lld parameters, %lld tokens/step (%lld x %lld)%s\n", i == 0 ? "run" : "against",
                run.recipe.model.family.c_str(), static_cast<long long>(run.model->num_parameters()),
                static_cast<long long>(run.layout.tokens_per_step), static_cast<long long>(run.layout.local_batch),
                static_cast<long long>(run.layout.seq_len), changed.c_str());
  }
  std::printf("  MFU against %s\n", cpu ? "the 1024^3 f32 GEMM peak measured beside each step" : runs[0]->peak_source.c_str());
  for (auto& run : runs)
    for (int s = 0; s < opt.warmup; ++s) train_step(*run);

  std::printf("%6s %12s", "round", "GEMM GFLOP/s");
  for (size_t i = 0; i < runs.size(); ++i) std::printf(" %12s %8s", i == 0 ? "tokens/s" : "against t/s", "MFU");
  if (runs.size() == 2) std::printf(" %8s", "ratio");
  std::printf("\n");
  std::vector<RunTimes> times(runs.size());
  std::vector<double> ratios;  // against / run, round by round
  for (int round = 1; round <= opt.rounds; ++round) {
    std::printf("%6d", round);
    for (size_t i = 0; i < runs.size(); ++i) {
      TrainingRun& run = *runs[i];
      // The peak right before each step: the two are measured seconds apart, not minutes.
      const double peak = cpu ? measure_gemm_peak_gflops() : run.peak_gflops;
      if (i == 0) std::printf(" %12.1f", peak);
      const StepNumbers step = train_step(run);
      const double tokens_per_s = static_cast<double>(run.layout.tokens_per_step) / step.seconds;
      const double mfu = run.flops_per_token * tokens_per_s / (peak * 1e9);
      times[i].tokens_per_s.push_back(tokens_per_s);
      times[i].mfu.push_back(mfu);
      std::printf(" %12.0f %7.1f%%", tokens_per_s, 100 * mfu);
    }
    if (runs.size() == 2) {
      ratios.push_back(times[1].tokens_per_s.back() / times[0].tokens_per_s.back());
      std::printf(" %8.3f", ratios.back());
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  // "median (lowest-highest)" of v times scale, each number in `format`.
  auto range = [](const std::vector<double>& v, double scale, const char* format) {
    auto text = [&](double x) {
      char buf[64];
      std::snprintf(buf, sizeof buf, format, scale * x);
      return std::string(buf);
    };
    return text(median(v)) + " (" + text(*std::min_element(v.begin(), v.end())) + "-" +
           text(*std::max_element(v.begin(), v.end())) + ")";
  };
  for (size_t i = 0; i < runs.size(); ++i)
    std::printf("%s: median tokens/s %s, median MFU %s %%\n", i == 0 ? "run" : "against",
                range(times[i].tokens_per_s, 1, "%.0f").c_str(), range(times[i].mfu, 100, "%.1f").c_str());
  if (!ratios.empty())
    std::printf("against / run tokens/s, round by round: median %s\n", range(ratios, 1, "%.3f").c_str());
}

}  // namespace

void add_bench_train_command(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("train", "Whole training steps of a recipe: tokens/s and MFU against a GEMM peak "
                                            "measured beside each step; --against: a second run in the same rounds");
  auto opt = std::make_shared<BenchTrainOptions>();
  cmd->add_option("recipe", opt->recipe, "Recipe file (see recipes/README.md)")->required();
  cmd->add_option("--set", opt->sets, "Override a recipe key: section.key=value (repeatable)")->take_all();
  cmd->add_option("--against", opt->against,
                  "A second run: the recipe with these keys changed as well, section.key=value (repeatable)")
      ->take_all();
  cmd->add_option("--rounds", opt->rounds, "Timed steps of each run")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--warmup", opt->warmup, "Untimed steps of each run first")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", opt->threads, "OpenMP threads (default: all cores)")->check(CLI::PositiveNumber);
  cmd->callback([opt] { bench_train(*opt); });
}

}  // namespace eat::cli
