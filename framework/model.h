#pragma once
// What every model family provides, and the registry the recipe parser and trainer look families
// up in. The families themselves live in models/ and are listed in models/registry.cpp.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "framework/comm/communicator.h"
#include "base/error.h"
#include "framework/nn/module.h"
#include "base/random.h"

namespace eat {

// A family-specific recipe key ([model.<family>] table): its name, default value (whose type is
// the key's type), one line of documentation and, for a string key, the values it allows (each
// with a few words of documentation). The recipe parser checks the choices; recipes/README.md's
// tables are rendered from these (option_table_markdown). An integer list is a TOML array of
// integers (`taylor_layers = [1, 6]`, `[]` for none), e.g. the layers that get some mixer.
using IntList = std::vector<int64_t>;
using OptionValue = std::variant<int64_t, double, bool, std::string, IntList>;
struct OptionChoice {
  std::string value;
  std::string doc;
};
struct OptionSpec {
  std::string name;
  OptionValue default_value;
  std::string doc;
  std::vector<OptionChoice> choices = {};  // empty: any value of the key's type
  std::optional<int64_t> min_value = {};   // an integer key's lower bound, checked at the key
  std::optional<double> float_floor = {};  // a float key's lower bound, checked at the key
  bool floor_excluded = false;             // whether the float key must lie above float_floor
  // The spec with an integer lower bound: {"block", int64_t{64}, "..."}.at_least(1).
  OptionSpec at_least(int64_t bound) && {
    min_value = bound;
    return std::move(*this);
  }
  // A float key that must be above bound ({"rope_theta", 1e4, "..."}.above(0)) or not below it.
  OptionSpec above(double bound) && {
    float_floor = bound;
    floor_excluded = true;
    return std::move(*this);
  }
  OptionSpec not_below(double bound) && {
    float_floor = bound;
    return std::move(*this);
  }
};

// Validated family options: every declared key present with the declared type.
class FamilyOptions {
 public:
  void set(const std::string& name, OptionValue v) { values_[name] = std::move(v); }
  int64_t get_int(const std::string& name) const;
  double get_float(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  const std::string& get_string(const std::string& name) const;
  const IntList& get_int_list(const std::string& name) const;
  // A channel mixer's hidden width: the option, or round(8 d_model / 3) when it is 0 (LLaMA's
  // choice, which keeps a gated mixer's parameters at those of a 4x MLP).
  int64_t hidden_width(const std::string& name, int64_t d_model) const;

 private:
  const OptionValue& at(const std::string& name) const;
  std::map<std::string, OptionValue> values_;
};

struct ModelConfig {
  std::string family;
  int64_t d_model = 256;
  int64_t n_layers = 4;
  int64_t n_heads = 4;
  int64_t vocab_size = 257;
  double init_std = 0.02;
  DType dtype = DType::f32;  // the parameters' type, from train.precision (f32 masters under bf16)
  // The activations' type when it differs from the parameters' (bf16 mixed precision): the model
  // casts its embedding output to it, and every layer casts its parameters to the type of the
  // activations it meets. Unset: activations have the parameters' type and no cast is recorded.
  std::optional<DType> compute_dtype;
  DType activation_dtype() const { return compute_dtype.value_or(dtype); }
  FamilyOptions options;
};

// A named auxiliary loss term of one forward (a mixture's load balance, say). The trainer adds
// weight * value to the micro-batch's cross-entropy and weighs the sum like the cross-entropy,
// 1/(micro-batches x data-parallel ranks x sequence-parallel ranks): value is the term over this
// rank's tokens of the micro-batch (a mean over them, say), and the weighted sum over every
// micro-batch and rank is the global batch's mean. A term that needs statistics of the whole
// sequence-parallel group (or batch) reduces them itself inside forward, differentiably, and then
// returns the group's value on every rank of it. metrics.jsonl logs it unweighted as aux_<name>.
// A term of weight 0 is a statistic (MoH's head use, say): logged and averaged like the others,
// never added to the loss (its value needs no gradient).
struct AuxLoss {
  std::string name;  // lower case, digits and '_'; not "loss"
  Tensor value;      // one element, differentiable
  double weight = 1;
};

// What a forward returns: the logits and the model's aux terms (none for most families).
struct ModelOutput {
  Tensor logits;
  std::vector<AuxLoss> aux = {};
};

struct FamilySpec;

// Autoregressive decoding of one batch of sequences: each step() continues them with the next
// tokens, carrying the model's decoding state (keys and values, recurrent states) from call to
// call, without gradients.
class Decoder {
 public:
  virtual ~Decoder() = default;
  // ids [B, T] (i32, on the host): a prompt, or the one token each sequence sampled last; returns
  // the logits [B, T, vocab] of those positions, as the full forward of the whole sequence so far
  // gives them.
  virtual Tensor step(const Tensor& ids) = 0;
  // The bytes the decoding state holds now (what grows, or not, with the sequence).
  virtual int64_t state_bytes() const = 0;
};

// The bytes the defined ones of these tensors hold (a decoding state's size).
int64_t defined_bytes(std::initializer_list<Tensor> tensors);

class LanguageModel : public Module {
 public:
  // ids [B, T] (i32) -> logits [B, T, vocab] and the aux terms.
  virtual ModelOutput forward(const Tensor& ids) = 0;
  // Model FLOPs per trained token (forward + backward, matmuls and attention), at this length;
  // the numerator of MFU.
  virtual double train_flops_per_token(int64_t seq_len) const = 0;
  // A fresh decoder of this model (which must outlive it); nullptr for a family without one.
  virtual std::unique_ptr<Decoder> decoder() { return nullptr; }

  // Sequence parallelism: from now on forward() sees only this rank's tokens of each sequence
  // (rank r of the group holds [r L, (r + 1) L)) and every SequenceMixer among the model's modules
  // exchanges what it needs over the group, booking its traffic to its module path
  // ("layers.2.attn"); nullptr returns to whole sequences. Refused for a family whose manifest
  // does not declare sequence parallelism, and where a mixer gives a reason
  // (SequenceMixer::sequence_parallel_refusal).
  // chain_slices: parallel.chain_slices (SequenceMixer::chain_slices).
  void set_sequence_parallel(Communicator* sp_group, int64_t chain_slices = 0);

 private:
  friend std::unique_ptr<LanguageModel> build_model(const ModelConfig& config, Generator& gen);
  const FamilySpec* family_ = nullptr;  // set by build_model
};

// A model family's manifest: everything generic code (recipe checks, documentation, the model
// tests, the CLI) needs to know about it.
struct FamilySpec {
  std::string name;
  std::vector<OptionSpec> options;
  // Keys this family once had under another name: {old, new}. A recipe using an old name is an
  // error naming the new one.
  std::vector<std::pair<std::string, std::string>> renamed_options;
  // Whether parallel.sp > 1 can train it (its token mixers derive from SequenceMixer).
  bool sequence_parallel = false;
  // The options the model-level tests use on their tiny model (d_model 8, 2 layers, 2 heads,
  // vocabulary 11; tests/models/tiny_model.h): small widths that still exercise every path.
  std::vector<std::pair<std::string, OptionValue>> tiny_test_options;
  // Extra checks that involve the sequence length, the sequence-parallel ranks sharing it
  // (parallel.sp, which divides seq_len) or several keys; returns "" when fine, else the message
  // (the recipe parser adds file and key: the key the message starts with when it starts with one
  // of the family's option names, else the family's table).
  std::function<std::string(const ModelConfig&, int64_t seq_len, int64_t sp)> check;
  std::function<std::unique_ptr<LanguageModel>(const ModelConfig&, Generator&)> build;
};

// "" when every entry of `list` (the option `key`) is a layer index in [0, n_layers), once; else
// the message, starting with the key (for FamilySpec::check of options that list layers).
std::string check_layer_list(const std::string& key, const IntList& list, int64_t n_layers);

// nullptr when unknown.
const FamilySpec* find_family(const std::string& name);
std::vector<std::string> family_names();
std::string family_list();  // "transformer, transnormer": for error messages
// The family's [model.<name>] key table in recipes/README.md's markdown (a test keeps the two equal).
std::string option_table_markdown(const FamilySpec& family);
// "\"a\", \"b\" or \"c\"": the choices of a string option, for messages.
std::string choice_list(const OptionSpec& option);
// Builds a model of config.family; an unknown family is an error listing the known ones.
std::unique_ptr<LanguageModel> build_model(const ModelConfig& config, Generator& gen);

}  // namespace eat
