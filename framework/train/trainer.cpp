#include "framework/train/trainer.h"

#include <omp.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "data/loader.h"
#include "data/token_file.h"
#include "framework/autograd.h"
#include "framework/comm/comm_stats.h"
#include "framework/profiler.h"
#include "framework/device_peak.h"
#include "framework/comm/communicator.h"
#include "base/error.h"
#include "framework/io/checkpoint_dir.h"
#include "framework/ops.h"
#include "framework/optim/adamw.h"
#include "framework/optim/schedule.h"
#include "framework/perf.h"
#include "framework/train/checkpoint.h"
#include "framework/train/evaluate.h"
#include "framework/train/metrics.h"
#include "framework/train/placement.h"

namespace eat {

namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_stop_requested{false};
extern "C" void request_stop(int) { g_stop_requested = true; }

// SIGINT/SIGTERM set a flag; the loop finishes its step, checkpoints and returns. Restores the
// previous handlers when the run ends.
class StopSignals {
 public:
  StopSignals() {
    g_stop_requested = false;
    old_int_ = std::signal(SIGINT, request_stop);
    old_term_ = std::signal(SIGTERM, request_stop);
  }
  ~StopSignals() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

std::string hms(double seconds) {
  long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

// Fills ids and targets [rows, L] from rows consecutive samples of the stream starting at first:
// positions [t0, t0 + L) of each sequence (a sequence-parallel rank's share; the whole sequence
// when sp = 1). Targets come from the unsplit sequence, so a share's last target is the next
// share's first token.
void read_batch(const data::SampleStream& stream, int64_t first, int64_t rows, int64_t t0, int64_t L, Tensor& ids,
                Tensor& targets) {
  const int64_t T = stream.seq_len();
  std::vector<int32_t> buf(static_cast<size_t>(rows * (T + 1)));
  stream.read(first, rows, buf.data());
  ids = Tensor::empty({rows, L}, DType::i32);
  targets = Tensor::empty({rows, L}, DType::i32);
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* s = buf.data() + r * (T + 1) + t0;
    std::copy(s, s + L, ids.data<int32_t>() + r * L);
    std::copy(s + 1, s + L + 1, targets.data<int32_t>() + r * L);
  }
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

std::string resolve_resume(const std::string& mode, const std::string& run_dir) {
  if (mode == "never") return "";
  if (mode == "auto") {
    auto all = list_checkpoints(run_dir);
    return all.empty() ? "" : all.back().path;
  }
  EAT_CHECK(fs::is_directory(mode), "--resume ", mode, ": no such checkpoint directory (use auto, never or a path)");
  return mode;
}

}  // namespace

std::string run_directory(const Recipe& recipe) { return (fs::path(recipe.run.out_dir) / recipe.run.name).string(); }

TrainResult train(const Recipe& recipe, const TrainOptions& options) {
  std::unique_ptr<Communicator> alone;
  if (!options.world) alone = make_single_communicator();
  Communicator& world = options.world ? *options.world : *alone;
  const int world_size = world.size(), rank = world.rank();
  recipe.check_world(world_size);
  ParallelGroups groups = make_parallel_groups(world, static_cast<int>(recipe.parallel.sp));
  // Logs, metrics and checkpoints come from rank 0 only.
  const bool leader = rank == 0;
  const bool say = !options.quiet && leader;
  TrainResult result;
  result.run_dir = run_directory(recipe);
  if (leader) fs::create_directories(result.run_dir);

  // Data.
  data::TokenFile train_file(recipe.data.train);
  EAT_CHECK(train_file.info().vocab_size <= recipe.model.vocab_size, recipe.source, ": model.vocab_size = ",
            recipe.model.vocab_size, " is smaller than the vocabulary of ", recipe.data.train, " (",
            train_file.info().vocab_size, ", tokenizer ", train_file.info().tokenizer, ")");
  std::unique_ptr<data::TokenFile> val_file;
  if (!recipe.data.val.empty()) val_file = std::make_unique<data::TokenFile>(recipe.data.val);
  const int64_t T = recipe.data.seq_len;
  data::SampleStream stream(train_file, T, recipe.run.seed);

  // Model and optimiser: the optimizer is built after the model moved, so its moments live on the
  // model's device.
  const ModelConfig mc = placed_model_config(recipe);
  const Device device = recipe.device();
  std::unique_ptr<LanguageModel> model = build_placed_model(recipe);
  AdamW optimizer(model->parameters(),
                  {recipe.optimizer.beta1, recipe.optimizer.beta2, recipe.optimizer.eps, recipe.optimizer.weight_decay});
  LrSchedule schedule;
  schedule.kind = parse_schedule_kind(recipe.schedule.kind);
  schedule.peak_lr = recipe.optimizer.lr;
  schedule.warmup_steps = recipe.schedule.warmup;
  schedule.total_steps = recipe.train.steps;
  schedule.min_lr_ratio = recipe.schedule.min_lr_ratio;
  schedule.decay_fraction = recipe.schedule.decay_fraction;
  schedule.validate();

  // Resume.
  TrainState state;
  state.world_size = world_size;
  state.sp = recipe.parallel.sp;
  state.recipe_hash = recipe_hash(recipe);
  state.family = recipe.model.family;
  state.num_parameters = model->num_parameters();
  std::string resume_dir = resolve_resume(options.resume, result.run_dir);
  if (!resume_dir.empty()) {
    TrainState saved = load_checkpoint_files(resume_dir, *model, &optimizer);
    EAT_CHECK(saved.family == recipe.model.family, resume_dir, ": checkpoint of family '", saved.family,
              "', the recipe trains '", recipe.model.family, "'");
    EAT_CHECK(saved.step <= recipe.train.steps, resume_dir, ": checkpoint is at step ", saved.step,
              ", past train.steps = ", recipe.train.steps);
    if (say && saved.recipe_hash != state.recipe_hash)
      std::printf("note: the recipe differs from the one the checkpoint was trained with (hash %s vs %s)\n",
                  state.recipe_hash.c_str(), saved.recipe_hash.c_str());
    state.step = saved.step;
    state.samples_consumed = saved.samples_consumed;
    result.last_checkpoint = resume_dir;
  }
  result.start_step = state.step;
  std::unique_ptr<MetricsLog> metrics;
  if (leader) metrics = std::make_unique<MetricsLog>((fs::path(result.run_dir) / "metrics.jsonl").string(), state.step);
  auto record = [&](const nlohmann::json& line) {
    if (metrics) metrics->append(line);
  };

  const int64_t dp = groups.dp, sp = groups.sp;
  const int64_t dp_rank = groups.dp_rank;
  const int64_t local_len = T / sp, local_t0 = groups.sp_rank * local_len;
  if (sp > 1) model->set_sequence_parallel(groups.sp_group.get());
  const int64_t local_batch = recipe.train.global_batch / dp;
  const int64_t micro = recipe.train.micro_batch > 0 ? recipe.train.micro_batch : local_batch;
  const int64_t n_micro = local_batch / micro;
  const int64_t tokens_per_step = recipe.train.global_batch * T;
  const double flops_per_token = model->train_flops_per_token(T);
  std::string peak_source = "log.peak_gflops";
  double peak_per_rank = recipe.log.peak_gflops;
  if (peak_per_rank <= 0 && device == Device::cuda) {
    DevicePeak p = device_peak_gflops(mc.activation_dtype(), recipe.train.tf32);
    peak_per_rank = p.gflops;
    peak_source = p.source;
  } else if (peak_per_rank <= 0) {
    peak_per_rank = measure_gemm_peak_gflops();
    peak_source = "measured 1024^3 f32 GEMM";
  }
  const double peak_gflops = peak_per_rank * world_size;
  EvalOptions eval_opt{T, T, recipe.eval.max_tokens, 8};

  if (say) {
    std::printf("eat train: %s | family %s | %lld parameters | d_model %lld, %lld layers, %lld heads\n",
                recipe.run.name.c_str(), recipe.model.family.c_str(), static_cast<long long>(model->num_parameters()),
                static_cast<long long>(mc.d_model), static_cast<long long>(mc.n_layers), static_cast<long long>(mc.n_heads));
    std::printf("  %lld tokens/step (%lld seqs x %lld), micro-batch %lld x %lld accumulation | world %d (dp %lld, sp %lld) | "
                "%d threads | peak %.0f GFLOP/s\n",
                static_cast<long long>(tokens_per_step), static_cast<long long>(recipe.train.global_batch),
                static_cast<long long>(T), static_cast<long long>(micro), static_cast<long long>(n_micro),
                world_size, static_cast<long long>(dp), static_cast<long long>(recipe.parallel.sp),
                omp_get_max_threads(), peak_gflops);
    std::printf("  %s, %s%s | peak from %s\n", device_name(device), recipe.train.precision.c_str(),
                recipe.train.tf32 ? " (TF32 matmuls)" : "", peak_source.c_str());
    std::printf("  run directory %s%s\n", result.run_dir.c_str(),
                resume_dir.empty() ? "" : (", resumed from " + resume_dir).c_str());
    std::fflush(stdout);
  }

  auto save = [&]() {
    state.num_parameters = model->num_parameters();
    if (leader) {
      result.last_checkpoint =
          write_checkpoint(result.run_dir, state.step, recipe.checkpoint.keep_last, [&](const std::string& dir) {
            save_checkpoint_files(dir, recipe, *model, &optimizer, state);
          });
      write_loss_curve(metrics->lines(), recipe.run.name + " (" + recipe.model.family + ")",
                       (fs::path(result.run_dir) / "loss.svg").string());
    }
    world.barrier();  // nobody runs ahead of (or exits before) a checkpoint that is still being written
  };
  auto validate = [&]() {
    // Every rank holds the same replica; rank 0 evaluates and reports.
    if (!val_file || !leader) return std::numeric_limits<double>::quiet_NaN();
    model->set_sequence_parallel(nullptr);  // rank 0 evaluates whole windows on its own
    EvalResult ev = evaluate(*model, *val_file, eval_opt);
    if (sp > 1) model->set_sequence_parallel(groups.sp_group.get());
    record({{"step", state.step}, {"val_loss", ev.loss}, {"val_ppl", ev.ppl}, {"val_bpb", ev.bpb},
            {"val_tokens", ev.tokens}});
    if (say) {
      std::printf("step %lld | val loss %.4f | ppl %.3f | bpb %.4f | %lld tokens\n", static_cast<long long>(state.step),
                  ev.loss, ev.ppl, ev.bpb, static_cast<long long>(ev.tokens));
      std::fflush(stdout);
    }
    return ev.loss;
  };

  StopSignals signals;
  const auto run_start = std::chrono::steady_clock::now();
  double window_seconds = 0, window_comm_seconds = 0;
  int64_t window_steps = 0;
  bool saved_at_end = false;
  result.last_val_loss = std::numeric_limits<double>::quiet_NaN();
  const std::vector<Parameter> params = model->parameters();
  // --profile: the first step (allocations, first touch of every buffer) is left out.
  double profiled_seconds = 0;
  int64_t profiled_steps = 0;
  while (state.step < recipe.train.steps) {
    const bool profiling = options.profile && state.step > result.start_step;
    if (profiling) {
      if (profiled_steps == 0) profiler::reset();
      profiler::enable(true);
    }
    const auto t0 = std::chrono::steady_clock::now();
    reset_comm_counts();  // this step's traffic only
    double loss_sum = 0;
    Tensor device_loss_sum;  // on a GPU the micro-batch losses add up there: one read-back per step
    for (int64_t m = 0; m < n_micro; ++m) {
      Tensor ids, targets;
      read_batch(stream, state.samples_consumed + dp_rank * local_batch + m * micro, micro, local_t0, local_len, ids,
                 targets);
      // The loss is computed in f32 even when the model computes in bf16.
      Tensor logits = loss_logits(model->forward(ids));
      Tensor loss =
          cross_entropy(reshape(logits, {micro * local_len, logits.size(-1)}), reshape(targets, {micro * local_len}));
      // Each rank's micro-batch mean weighs 1/(n_micro dp sp): summed over micro-batches and all
      // ranks, the gradient is that of the global batch's mean loss (every share has as many targets).
      scale(loss, 1.0 / static_cast<double>(n_micro * dp * sp)).backward();
      if (device == Device::cpu) loss_sum += loss.item();
      else device_loss_sum = device_loss_sum.defined() ? add(device_loss_sum, loss.detach()) : loss.detach();
    }
    if (device_loss_sum.defined()) loss_sum = device_loss_sum.item();
    if (world_size > 1) {
      // Every rank holds a full replica: data-parallel ranks saw other samples, sequence-parallel
      // ranks other positions; the sum over all of them is the global gradient.
      // A parameter no path reached on this rank still joins the collective, with zeros.
      CommLabel scope("grads.all_reduce");
      for (const Parameter& p : params) {
        if (!p.tensor.grad().defined()) p.tensor.set_grad(Tensor::zeros_like(p.tensor));
        world.all_reduce_sum(p.tensor.grad());
      }
      Tensor total = Tensor::full({1}, loss_sum, DType::f64);
      CommLabel loss_scope("loss.all_reduce");
      world.all_reduce_sum(total);
      loss_sum = total.item();
    }
    const double loss = loss_sum / static_cast<double>(n_micro * dp * sp);
    EAT_CHECK(std::isfinite(loss), "step ", state.step + 1, ": training loss is ", loss, "; stopping without updating. ",
              result.last_checkpoint.empty() ? std::string("No checkpoint was written yet.")
                                             : "The last good checkpoint is " + result.last_checkpoint);
    const double grad_norm = clip_grad_norm(params, recipe.train.grad_clip);
    EAT_CHECK(std::isfinite(grad_norm), "step ", state.step + 1, ": gradient norm is ", grad_norm, "; stopping. ",
              result.last_checkpoint.empty() ? std::string("No checkpoint was written yet.")
                                             : "The last good checkpoint is " + result.last_checkpoint);
    const double lr = schedule.lr_at(state.step);
    optimizer.step(lr);
    optimizer.zero_grad();
    state.step += 1;
    state.samples_consumed += recipe.train.global_batch;
    result.losses.push_back(loss);

    const double step_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (profiling) {
      profiler::enable(false);  // validation and checkpoints are not part of the step
      profiled_seconds += step_seconds;
      profiled_steps += 1;
    }
    const double tokens_per_s = static_cast<double>(tokens_per_step) / step_seconds;
    const double mfu = flops_per_token * tokens_per_s / (peak_gflops * 1e9);
    nlohmann::json line = {{"step", state.step}, {"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm},
                           {"tokens_per_s", tokens_per_s}, {"mfu", mfu}, {"step_seconds", step_seconds}};
    // Time inside collectives (waiting for slower ranks included) over the step's wall time.
    const CommCount comm = comm_total();
    if (world_size > 1) {
      line["comm_share"] = comm.seconds / step_seconds;
      line["comm_bytes"] = comm.bytes;
      if (say && state.step == result.start_step + 1) print_comm_counts(rank);
    }
    if (device == Device::cuda) {
      const AllocatorStats mem = device_memory_stats();
      line["device_peak_allocated"] = mem.peak_allocated;
      line["device_peak_reserved"] = mem.peak_reserved;
      if (say && state.step == result.start_step + 1) {
        std::printf("  device memory after the first step: %s\n", device_memory_summary().c_str());
        std::fflush(stdout);
      }
    }
    record(line);
    window_seconds += step_seconds;
    window_comm_seconds += comm.seconds;
    window_steps += 1;
    if (say && (state.step % recipe.log.every == 0 || state.step == recipe.train.steps)) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
      const double per_step = window_seconds / static_cast<double>(window_steps);
      const double tps = static_cast<double>(tokens_per_step) / per_step;
      char comm_share[32] = "";
      if (world_size > 1) std::snprintf(comm_share, sizeof comm_share, " | comm %.1f%%", 100.0 * window_comm_seconds / window_seconds);
      std::printf("step %lld/%lld | loss %.4f | lr %.2e | grad norm %.3f | %.0f tok/s | mfu %.1f%%%s | %s elapsed | eta %s\n",
                  static_cast<long long>(state.step), static_cast<long long>(recipe.train.steps), loss, lr, grad_norm,
                  tps, 100.0 * flops_per_token * tps / (peak_gflops * 1e9), comm_share, hms(elapsed).c_str(),
                  hms(per_step * static_cast<double>(recipe.train.steps - state.step)).c_str());
      std::fflush(stdout);
      window_seconds = 0;
      window_comm_seconds = 0;
      window_steps = 0;
    }
    const bool last = state.step == recipe.train.steps;
    if (options.profile && last && say) profiler::print(stdout, profiled_seconds, profiled_steps);
    if (recipe.eval.every > 0 && state.step % recipe.eval.every == 0 && !last) result.last_val_loss = validate();
    if (last) result.last_val_loss = validate();
    if ((recipe.checkpoint.every > 0 && state.step % recipe.checkpoint.every == 0) || last) {
      save();
      saved_at_end = last;
    }
    if (world.any(g_stop_requested)) {  // every rank stops at the same step
      if (!last) save();
      result.interrupted = true;
      if (say) std::printf("stopped by signal at step %lld; checkpoint %s\n", static_cast<long long>(state.step),
                           result.last_checkpoint.c_str());
      break;
    }
  }
  if (!saved_at_end && !result.interrupted && state.step == recipe.train.steps && result.start_step == state.step) {
    // Resumed at the end already: nothing to train, still leave the curve.
    if (leader) write_loss_curve(metrics->lines(), recipe.run.name, (fs::path(result.run_dir) / "loss.svg").string());
  }
  if (say && device == Device::cuda) {
    std::printf("device memory at the end: %s\n", device_memory_summary().c_str());
    std::fflush(stdout);
  }
  result.final_step = state.step;
  return result;
}

}  // namespace eat
