#pragma once
// What a training checkpoint holds and how it is checked on load:
//   model.safetensors      weights under their parameter names (any safetensors reader loads it)
//   optimizer.safetensors  AdamW moments "<name>.exp_avg", "<name>.exp_avg_sq" and step counts
//   state.json             step, data position, world layout, version, recipe hash (written last)
//   recipe.toml            the effective recipe
//   tokenizer.model        the SentencePiece model the training data were written with (subword
//                          data only; bytes need none): a checkpoint turns text into ids alone
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "data/tokenizer.h"
#include "framework/config/recipe.h"
#include "framework/model.h"
#include "framework/optim/adamw.h"

namespace eat {

struct TrainState {
  int64_t step = 0;              // optimizer steps completed
  int64_t samples_consumed = 0;  // global samples the data stream has handed out
  int world_size = 1;
  int64_t sp = 1;
  std::string recipe_hash;
  std::string family;
  int64_t num_parameters = 0;
  // The data's subword tokenizer ("sentencepiece") and the text_hash of its tokenizer.model; both
  // "" for bytes (and checkpoints from before subword tokenizers).
  std::string tokenizer, tokenizer_hash;
  nlohmann::json to_json() const;
  static TrainState from_json(const nlohmann::json& j, const std::string& path);
};

// Writes every file into dir (fsynced); the caller makes the directory atomic. tokenizer_model:
// the serialized tokenizer model of state.tokenizer ("" for bytes).
void save_checkpoint_files(const std::string& dir, const Recipe& recipe, const LanguageModel& model,
                           const AdamW* optimizer, const TrainState& state, const std::string& tokenizer_model = "");

// Loads weights (and optimizer state when optimizer is given) from a checkpoint directory,
// checking that every parameter is present with the same shape and dtype and nothing is extra;
// a mismatch is an error naming the file and the parameter.
TrainState load_checkpoint_files(const std::string& dir, LanguageModel& model, AdamW* optimizer);

// The recipe stored in a checkpoint (for `eat eval` and `eat info`).
Recipe checkpoint_recipe(const std::string& dir);

// Whether t (any device) holds no inf or nan: its sum is finite (a sum of finite values that
// overflows to inf marks weights as unusable as an inf would). What training will not checkpoint
// and eval and generate will not load.
bool finite_values(const Tensor& t);
TrainState checkpoint_state(const std::string& dir);

// The tokenizer a checkpoint's model reads and writes: bytes, or its tokenizer.model, refused when
// that file is missing or not the one state.json's tokenizer_hash names.
std::unique_ptr<data::Tokenizer> checkpoint_tokenizer(const std::string& dir, const TrainState& state);

}  // namespace eat
