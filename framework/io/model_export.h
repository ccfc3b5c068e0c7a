#pragma once
// Exporting a trained model for other tools (`eat export`).
//
// The transformer family goes out as Hugging Face transformers' LlamaForCausalLM, loadable with no
// custom code: config.json, model.safetensors under Llama's parameter names, and the SentencePiece
// model when the run used one. The weights load unchanged because eat's transformer follows
// Llama's conventions exactly: rotate-half RoPE pairing channel i with i + d/2 at frequency
// theta^(-2i/d) (Hugging Face's own layout, so q_proj and k_proj need no permutation), RMSNorm
// x / sqrt(mean(x^2) + eps) * w, SwiGLU down(silu(gate(x)) * up(x)), bias-free projections stored
// [out, in], attention scaled by 1/sqrt(head_dim), no embedding scale, one key/value head per
// query head. What Llama lacks (a sliding window) is refused.
//
// Other families have no Hugging Face class: they go out in eat's own layout, model.safetensors
// under eat's names and a config.json of the family and its options for eat's loader.
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "framework/config/recipe.h"
#include "framework/model.h"

namespace eat {

// One row per transformer parameter: eat's name and Hugging Face Llama's, "{i}" standing for the
// block index. The one place the two layouts meet.
struct ExportName {
  std::string eat, hf;
};
const std::vector<ExportName>& llama_names();

// The Llama name of a transformer parameter and back; an error naming the parameter when no row of
// llama_names() maps it.
std::string llama_name(const std::string& eat_name);
std::string eat_name_of_llama(const std::string& hf_name);

struct ExportResult {
  std::string layout;  // "hf" (LlamaForCausalLM) or "eat" (a family without a Hugging Face class)
  std::vector<std::string> files;  // written into the output directory
};

// Writes the model (its recipe and the tokenizer its data were written with) into out_dir, created
// when missing; a transformer Llama cannot express is an error naming the key.
ExportResult export_model(const Recipe& recipe, const LanguageModel& model, const data::Tokenizer& tokenizer,
                          const std::string& out_dir);

}  // namespace eat
