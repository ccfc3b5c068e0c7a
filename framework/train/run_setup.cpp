// Set-up of a training run: the world and its parallel groups, the data, the model on its device,
// optimizer, schedule, batch layout and the peak FLOP/s MFU is measured against.
#include <filesystem>
#include <limits>

#include "base/error.h"
#include "framework/device_peak.h"
#include "framework/perf.h"
#include "framework/storage.h"
#include "framework/train/memory_estimate.h"
#include "framework/train/placement.h"
#include "framework/train/training_run.h"

namespace eat {

namespace {

LrSchedule schedule_of(const Recipe& recipe) {
  LrSchedule schedule;
  schedule.kind = parse_schedule_kind(recipe.schedule.kind);
  schedule.peak_lr = recipe.optimizer.lr;
  schedule.warmup_steps = recipe.schedule.warmup;
  schedule.total_steps = recipe.train.steps;
  schedule.min_lr_ratio = recipe.schedule.min_lr_ratio;
  schedule.decay_fraction = recipe.schedule.decay_fraction;
  schedule.validate();
  return schedule;
}

BatchLayout layout_of(const Recipe& recipe, const ParallelGroups& groups) {
  BatchLayout l;
  l.seq_len = recipe.data.seq_len;
  l.dp = groups.dp;
  l.sp = groups.sp;
  l.dp_rank = groups.dp_rank;
  l.local_len = l.seq_len / l.sp;
  l.local_t0 = groups.sp_rank * l.local_len;
  l.local_batch = recipe.train.global_batch / l.dp;
  l.micro = recipe.train.micro_batch > 0 ? recipe.train.micro_batch : l.local_batch;
  l.n_micro = l.local_batch / l.micro;
  l.tokens_per_step = recipe.train.global_batch * l.seq_len;
  return l;
}

// Refuses a run whose estimate exceeds the memory it would live in: before the model is built with
// every family's parameter floor (so that an absurd size never reaches the allocator), after it
// with the model's own count (its parameters then already allocated). CUDA models are built on
// the host and moved, so the host must hold their parameters first.
void check_memory(const Recipe& recipe, const ModelConfig& model, const BatchLayout& layout, Device device,
                  double parameters, bool floor) {
  const MemoryEstimate need = estimate_training_memory(model, parameters, layout.micro, layout.local_len, device);
  const bool resident = !floor;
  if (device == Device::cpu) {
    check_training_memory(recipe, need, available_memory(Device::cpu), "the host's MemAvailable", floor, resident);
    return;
  }
  check_training_memory(recipe, need, available_memory(Device::cuda), "the CUDA device's free memory", floor, resident);
  if (floor) {
    MemoryEstimate host;
    host.parameters = need.parameters;
    check_training_memory(recipe, host, available_memory(Device::cpu), "the host's MemAvailable", floor, false);
  }
}

}  // namespace

TrainingRun::TrainingRun(const Recipe& r, const TrainOptions& o, std::unique_ptr<LanguageModel> given_model)
    : recipe(r),
      options(o),
      alone(o.world ? nullptr : make_single_communicator()),
      world(o.world ? *o.world : *alone) {
  leader = world.rank() == 0;
  say = !options.quiet && leader;
  result.run_dir = run_directory(recipe);
  // What every rank checks alike comes before the first collective, so that a mistake in the
  // recipe or the data is one message and a normal exit on every rank (agree_on_errors).
  agree_on_errors(world, [&] {
    recipe.check_world(world.size());
    if (leader) std::filesystem::create_directories(result.run_dir);
    open_data();
  });
  groups = make_parallel_groups(world, static_cast<int>(recipe.parallel.sp));

  model_config = placed_model_config(recipe);
  device = recipe.device();
  layout = layout_of(recipe, groups);
  if (!given_model) check_memory(recipe, model_config, layout, device, parameter_floor(model_config), true);
  model = given_model ? std::move(given_model) : build_placed_model(recipe);
  params = model->parameters();
  check_memory(recipe, model_config, layout, device, static_cast<double>(model->num_parameters()), false);
  for (const Parameter& p : params)
    EAT_CHECK(p.tensor.device() == device, "the model to train has parameter '", p.name, "' on ", device_name(p.tensor.device()),
              ", the recipe trains on ", device_name(device));
  optimizer = std::make_unique<AdamW>(
      params, AdamWConfig{recipe.optimizer.beta1, recipe.optimizer.beta2, recipe.optimizer.eps, recipe.optimizer.weight_decay});
  schedule = schedule_of(recipe);

  if (layout.sp > 1) model->set_sequence_parallel(groups.sp_group.get(), recipe.parallel.chain_slices);
  flops_per_token = model->train_flops_per_token(layout.seq_len);
  peak_source = "log.peak_gflops";
  double peak_per_rank = recipe.log.peak_gflops;
  if (peak_per_rank <= 0 && device == Device::cuda) {
    DevicePeak p = device_peak_gflops(model_config.activation_dtype(), recipe.train.tf32);
    peak_per_rank = p.gflops;
    peak_source = p.source;
  } else if (peak_per_rank <= 0) {
    // Once per run, so the best of ten: a best of three taken while another job held a core once
    // read half the machine's peak, and every MFU of that run twice what it was.
    peak_per_rank = measure_gemm_peak_gflops(1024, 10);
    peak_source = "measured 1024^3 f32 GEMM";
  }
  peak_gflops = peak_per_rank * world.size();
  eval_options = {layout.seq_len, layout.seq_len, recipe.eval.max_tokens, 8};
  result.last_val_loss = std::numeric_limits<double>::quiet_NaN();
}

void TrainingRun::open_data() {
  train_file = std::make_unique<data::TokenFile>(recipe.data.train);
  EAT_CHECK(train_file->info().vocab_size <= recipe.model.vocab_size, recipe.source, ": model.vocab_size = ",
            recipe.model.vocab_size, " is smaller than the vocabulary of ", recipe.data.train, " (",
            train_file->info().vocab_size, ", tokenizer ", train_file->info().tokenizer, ")");
  if (!recipe.data.val.empty()) val_file = std::make_unique<data::TokenFile>(recipe.data.val);
  tokenizer = data::token_files_tokenizer(*train_file, val_file.get());
  // Both files whole, before the first step: a bad id or a validation split with nothing to score
  // must not surface at a validation after hours of training.
  const std::string vocab_key = "model.vocab_size = " + std::to_string(recipe.model.vocab_size);
  train_file->check_ids(recipe.model.vocab_size, vocab_key);
  if (val_file) {
    val_file->check_ids(recipe.model.vocab_size, vocab_key);
    EAT_CHECK(val_file->size() >= 2, recipe.source, ": data.val = ", recipe.data.val, " holds ", val_file->size(),
              " tokens, too few to score anything (at least 2)");
  }
  train_mask = data::open_mask_beside(*train_file);
  if (val_file) val_mask = data::open_mask_beside(*val_file);
  stream = std::make_unique<data::SampleStream>(*train_file, recipe.data.seq_len, recipe.run.seed, train_mask.get());
}

}  // namespace eat
