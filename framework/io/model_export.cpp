#include "framework/io/model_export.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "framework/io/safetensors.h"
#include "framework/version.h"

namespace eat {

namespace fs = std::filesystem;

namespace {

// The name `to` gives what `from` names as `name` ("" when `from` does not match): "{i}" in a
// pattern matches a block index.
std::string translate(const std::string& name, const std::string& from, const std::string& to) {
  const size_t at = from.find("{i}");
  if (at == std::string::npos) return name == from ? to : "";
  const std::string prefix = from.substr(0, at), suffix = from.substr(at + 3);
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return "";
  const std::string index = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (index.find_first_not_of("0123456789") != std::string::npos) return "";
  std::string out = to;
  return out.replace(out.find("{i}"), 3, index);
}

std::string dtype_for_torch(DType d) {
  switch (d) {
    case DType::f64: return "float64";
    case DType::bf16: return "bfloat16";
    default: return "float32";
  }
}

void write_json(const fs::path& path, const nlohmann::ordered_json& j) { write_file_synced(path.string(), j.dump(2) + "\n"); }

nlohmann::ordered_json option_json(const FamilyOptions& options, const OptionSpec& spec) {
  switch (spec.default_value.index()) {
    case 0: return options.get_int(spec.name);
    case 1: return options.get_float(spec.name);
    case 2: return options.get_bool(spec.name);
    case 3: return options.get_string(spec.name);
    default: return options.get_int_list(spec.name);
  }
}

// Hugging Face's LlamaTokenizer over the SentencePiece model as eat trains it: ids straight from
// SentencePiece (legacy mode, no prefix space added), no <s>, </s> as end of text.
nlohmann::ordered_json llama_tokenizer_config() {
  return {{"tokenizer_class", "LlamaTokenizer"}, {"legacy", true},          {"add_prefix_space", false},
          {"add_bos_token", false},              {"add_eos_token", false},  {"bos_token", nullptr},
          {"eos_token", "</s>"},                 {"unk_token", "<unk>"},    {"pad_token", nullptr},
          {"clean_up_tokenization_spaces", false}, {"model_max_length", 1000000000}};
}

nlohmann::ordered_json llama_config(const Recipe& recipe, const data::Tokenizer& tokenizer) {
  const ModelConfig& m = recipe.model;
  const FamilyOptions& o = m.options;
  EAT_CHECK(o.get_int("window") < 0, "export --format hf: model.transformer.window = ", o.get_int("window"),
            " (sliding-window attention) has no LlamaForCausalLM equivalent, which attends to every earlier token");
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"hidden_size", m.d_model},
          {"num_hidden_layers", m.n_layers},
          {"num_attention_heads", m.n_heads},
          {"num_key_value_heads", m.n_heads},
          {"head_dim", m.d_model / m.n_heads},
          {"intermediate_size", o.hidden_width("mlp_hidden", m.d_model)},
          {"hidden_act", "silu"},
          {"rms_norm_eps", o.get_float("norm_eps")},
          {"rope_theta", o.get_float("rope_theta")},
          {"rope_scaling", nullptr},
          {"vocab_size", m.vocab_size},
          {"tie_word_embeddings", o.get_bool("tie_embeddings")},
          {"max_position_embeddings", recipe.data.seq_len},
          {"attention_bias", false},
          {"mlp_bias", false},
          {"attention_dropout", 0.0},
          {"initializer_range", m.init_std},
          {"bos_token_id", nullptr},
          {"eos_token_id", tokenizer.end_of_text()},
          {"pad_token_id", nullptr},
          {"torch_dtype", dtype_for_torch(m.dtype)},
          {"use_cache", true}};
}

nlohmann::ordered_json eat_config(const Recipe& recipe, const LanguageModel& model, const data::Tokenizer& tokenizer) {
  const ModelConfig& m = recipe.model;
  nlohmann::ordered_json options = nlohmann::ordered_json::object();
  if (const FamilySpec* spec = find_family(m.family))
    for (const OptionSpec& s : spec->options) options[s.name] = option_json(m.options, s);
  return {{"format", "eat"},
          {"eat_version", version()},
          {"family", m.family},
          {"d_model", m.d_model},
          {"n_layers", m.n_layers},
          {"n_heads", m.n_heads},
          {"vocab_size", m.vocab_size},
          {"options", options},
          {"seq_len", recipe.data.seq_len},
          {"dtype", dtype_for_torch(m.dtype)},
          {"tokenizer", tokenizer.name()},
          {"end_of_text_id", tokenizer.end_of_text()},
          {"num_parameters", model.num_parameters()}};
}

}  // namespace

const std::vector<ExportName>& llama_names() {
  static const std::vector<ExportName> names = {
      {"embed.weight", "model.embed_tokens.weight"},
      {"layers.{i}.attn_norm.weight", "model.layers.{i}.input_layernorm.weight"},
      {"layers.{i}.attn.q_proj.weight", "model.layers.{i}.self_attn.q_proj.weight"},
      {"layers.{i}.attn.k_proj.weight", "model.layers.{i}.self_attn.k_proj.weight"},
      {"layers.{i}.attn.v_proj.weight", "model.layers.{i}.self_attn.v_proj.weight"},
      {"layers.{i}.attn.o_proj.weight", "model.layers.{i}.self_attn.o_proj.weight"},
      {"layers.{i}.mlp_norm.weight", "model.layers.{i}.post_attention_layernorm.weight"},
      {"layers.{i}.mlp.gate_proj.weight", "model.layers.{i}.mlp.gate_proj.weight"},
      {"layers.{i}.mlp.up_proj.weight", "model.layers.{i}.mlp.up_proj.weight"},
      {"layers.{i}.mlp.down_proj.weight", "model.layers.{i}.mlp.down_proj.weight"},
      {"norm.weight", "model.norm.weight"},
      {"lm_head.weight", "lm_head.weight"},  // absent when tied: Llama then reuses embed_tokens
  };
  return names;
}

std::string llama_name(const std::string& eat_name) {
  for (const ExportName& n : llama_names())
    if (std::string hf = translate(eat_name, n.eat, n.hf); !hf.empty()) return hf;
  fail("export --format hf: the transformer parameter '", eat_name, "' has no Hugging Face Llama name");
}

std::string eat_name_of_llama(const std::string& hf_name) {
  for (const ExportName& n : llama_names())
    if (std::string eat = translate(hf_name, n.hf, n.eat); !eat.empty()) return eat;
  fail("'", hf_name, "' is no Hugging Face Llama parameter eat's transformer has");
}

ExportResult export_model(const Recipe& recipe, const LanguageModel& model, const data::Tokenizer& tokenizer,
                          const std::string& out_dir) {
  const bool llama = recipe.model.family == "transformer";
  const nlohmann::ordered_json config = llama ? llama_config(recipe, tokenizer) : eat_config(recipe, model, tokenizer);
  std::vector<std::pair<std::string, Tensor>> weights;
  for (const Parameter& p : model.parameters()) weights.emplace_back(llama ? llama_name(p.name) : p.name, p.tensor);

  fs::create_directories(out_dir);
  const fs::path dir(out_dir);
  ExportResult r;
  r.layout = llama ? "hf" : "eat";
  write_json(dir / "config.json", config);
  save_safetensors((dir / "model.safetensors").string(), weights,
                   {{"format", llama ? "pt" : "eat"}, {"family", recipe.model.family}});
  r.files = {"config.json", "model.safetensors"};
  if (const std::string model_bytes = tokenizer.model_bytes(); !model_bytes.empty()) {
    write_file_synced((dir / data::kTokenizerModelFile).string(), model_bytes);
    r.files.push_back(data::kTokenizerModelFile);
    if (llama) {
      write_json(dir / "tokenizer_config.json", llama_tokenizer_config());
      r.files.push_back("tokenizer_config.json");
    }
  }
  return r;
}

}  // namespace eat
