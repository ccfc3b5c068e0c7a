#pragma once
// Training recipes: TOML files (toml++) with the sections below. Every key is validated: unknown
// keys, wrong types and impossible values are errors naming the file, line and key. `--set
// section.key=value` overrides go through the same validation. recipes/README.md documents each key.
#include <cstdint>
#include <string>
#include <vector>

#include "framework/model.h"

namespace eat {

struct Recipe {
  struct Run {
    std::string name;
    std::string out_dir = "runs";
    uint64_t seed = 1234;
  } run;
  ModelConfig model;
  struct Data {
    std::string train, val;
    int64_t seq_len = 512;
  } data;
  struct Train {
    int64_t steps = 0;
    int64_t global_batch = 8;  // sequences per optimizer step, over all data-parallel ranks
    int64_t micro_batch = 0;   // sequences per forward/backward on one rank; 0 = the whole local batch
    double grad_clip = 1.0;    // 0 disables clipping
    std::string device = "cpu";     // cpu | cuda
    std::string precision = "f32";  // f32 | f64 (cpu) | bf16 (cuda: f32 master weights, bf16 compute)
    bool tf32 = false;              // cuda f32 only: matmuls may round their inputs to TF32
    std::string device_where;       // "file:line:col: train.device", for check_device()'s error
  } train;
  struct Optimizer {
    double lr = 3e-4;
    double beta1 = 0.9, beta2 = 0.95;
    double eps = 1e-8;
    double weight_decay = 0.1;
  } optimizer;
  struct Schedule {
    int64_t warmup = 0;
    std::string kind = "cosine";
    double min_lr_ratio = 0.1;
    double decay_fraction = 0.2;
  } schedule;
  struct Parallel {
    int64_t sp = 1;
    int64_t chain_slices = 0;  // SequenceMixer::chain_slices; 0: one slice per sequence
  } parallel;
  struct Checkpoint {
    int64_t every = 0;  // 0: only at the end
    int64_t keep_last = 3;
  } checkpoint;
  struct Eval {
    int64_t every = 0;       // 0: only at the end
    int64_t max_tokens = 0;  // 0: the whole validation split
  } eval;
  struct Log {
    int64_t every = 10;
    double peak_gflops = 0;  // MFU denominator; 0: measure a GEMM at start
  } log;

  std::string source;  // the recipe file
  std::string text;    // the effective recipe (file plus overrides) as TOML, saved with checkpoints

  // Checks that need the world size: sp divides it, the global batch splits over data ranks.
  void check_world(int world_size) const;
  int64_t data_parallel(int world_size) const { return world_size / parallel.sp; }
  // train.device = "cuda" needs a build with CUDA and a visible device; an error naming the key
  // otherwise. The trainer calls it; parsing does not, so a GPU recipe or a checkpoint trained on
  // a GPU can still be read (and overridden to the CPU) on a machine without one.
  void check_device() const;
  Device device() const { return train.device == "cuda" ? Device::cuda : Device::cpu; }
};

// Parses and validates a recipe file with `section.key=value` overrides applied in order.
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides = {});
// What a family key that was renamed (FamilySpec::renamed_options) does: a recipe a user writes
// is refused with the new name, so it gets fixed once; the recipe stored in a checkpoint made
// before the rename is read with the key under its new name, so old checkpoints keep loading.
enum class RenamedKeys { refuse, migrate };
// The same from TOML text (source names it in errors); used for recipes stored in checkpoints.
Recipe parse_recipe(const std::string& text, const std::string& source, const std::vector<std::string>& overrides = {},
                    RenamedKeys renamed = RenamedKeys::refuse);

// 64-bit FNV-1a of the effective recipe text, as hex: stored in checkpoints.
std::string recipe_hash(const Recipe& recipe);
// The same FNV-1a hash of any text (a checkpoint's recipe.toml as written: recipe.text).
std::string text_hash(const std::string& text);

}  // namespace eat
