// `eat export`: the transformer as Hugging Face's LlamaForCausalLM (names, shapes and config of its
// layout, and weights that come back into eat bit for bit), other families in eat's own layout.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/random.h"
#include "data/sentencepiece_tokenizer.h"
#include "framework/autograd.h"
#include "framework/io/model_export.h"
#include "framework/io/safetensors.h"
#include "framework/train/placement.h"
#include "temp_dir.h"
#include "tiny_run.h"

using namespace eat;
using eat::test::TempDir;
using eat::test::read_text;

namespace {

Recipe tiny_recipe(const TempDir& dir, std::vector<std::string> sets = {}) {
  sets.push_back("model.vocab_size=300");
  return parse_recipe(test::recipe_text(dir.str()), "test.toml", sets);
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_text(path)); }

Tensor logits_of(LanguageModel& model) {
  NoGradGuard no_grad;
  std::vector<int32_t> ids;
  for (int i = 0; i < 2 * 24; ++i) ids.push_back((i * 37 + 5) % 300);
  return model.forward(Tensor::from_vector<int32_t>(ids, {2, 24})).logits;
}

}  // namespace

TEST_CASE("export: the transformer's names and shapes are Hugging Face Llama's") {
  // Hugging Face's LlamaForCausalLM state dict for hidden 32, 2 layers, intermediate 64, vocab 300.
  const std::map<std::string, Shape> llama = {
      {"model.embed_tokens.weight", {300, 32}},
      {"model.layers.0.input_layernorm.weight", {32}},
      {"model.layers.0.self_attn.q_proj.weight", {32, 32}},
      {"model.layers.0.self_attn.k_proj.weight", {32, 32}},
      {"model.layers.0.self_attn.v_proj.weight", {32, 32}},
      {"model.layers.0.self_attn.o_proj.weight", {32, 32}},
      {"model.layers.0.post_attention_layernorm.weight", {32}},
      {"model.layers.0.mlp.gate_proj.weight", {64, 32}},
      {"model.layers.0.mlp.up_proj.weight", {64, 32}},
      {"model.layers.0.mlp.down_proj.weight", {32, 64}},
      {"model.layers.1.input_layernorm.weight", {32}},
      {"model.layers.1.self_attn.q_proj.weight", {32, 32}},
      {"model.layers.1.self_attn.k_proj.weight", {32, 32}},
      {"model.layers.1.self_attn.v_proj.weight", {32, 32}},
      {"model.layers.1.self_attn.o_proj.weight", {32, 32}},
      {"model.layers.1.post_attention_layernorm.weight", {32}},
      {"model.layers.1.mlp.gate_proj.weight", {64, 32}},
      {"model.layers.1.mlp.up_proj.weight", {64, 32}},
      {"model.layers.1.mlp.down_proj.weight", {32, 64}},
      {"model.norm.weight", {32}},
      {"lm_head.weight", {300, 32}},
  };
  for (bool tied : {false, true}) {
    CAPTURE(tied);
    TempDir dir("export");
    Recipe recipe = tiny_recipe(dir, {std::string("model.transformer.tie_embeddings=") + (tied ? "true" : "false")});
    auto model = build_placed_model(recipe);
    ExportResult r = export_model(recipe, *model, data::ByteTokenizer(), dir / "hf");
    CHECK(r.layout == "hf");
    CHECK(r.files == std::vector<std::string>{"config.json", "model.safetensors"});  // bytes: no tokenizer file
    SafetensorsFile f = load_safetensors(dir / "hf/model.safetensors");
    std::map<std::string, Shape> got;
    for (const auto& [name, t] : f.tensors) got[name] = t.shape();
    std::map<std::string, Shape> want = llama;
    if (tied) want.erase("lm_head.weight");  // Llama ties lm_head to embed_tokens itself
    CHECK(got == want);
    CHECK(f.metadata.at("format") == "pt");

    const nlohmann::json c = read_json(dir / "hf/config.json");
    CHECK(c["architectures"] == nlohmann::json::array({"LlamaForCausalLM"}));
    CHECK(c["model_type"] == "llama");
    CHECK(c["hidden_size"] == 32);
    CHECK(c["num_hidden_layers"] == 2);
    CHECK(c["num_attention_heads"] == 2);
    CHECK(c["num_key_value_heads"] == 2);
    CHECK(c["intermediate_size"] == 64);
    CHECK(c["hidden_act"] == "silu");
    CHECK(c["rms_norm_eps"] == 1e-5);
    CHECK(c["rope_theta"] == 10000.0);
    CHECK(c["vocab_size"] == 300);
    CHECK(c["tie_word_embeddings"] == tied);
    CHECK(c["max_position_embeddings"] == 32);
    CHECK(c["attention_bias"] == false);
    CHECK(c["mlp_bias"] == false);
    CHECK(c["eos_token_id"] == 256);
    CHECK(c["torch_dtype"] == "float32");
  }
}

TEST_CASE("export: the exported weights, read back into eat, give bit-identical logits") {
  TempDir dir("export_rt");
  Recipe recipe = tiny_recipe(dir);
  auto model = build_placed_model(recipe);
  const std::vector<double> before = logits_of(*model).to_f64_vector();
  export_model(recipe, *model, data::ByteTokenizer(), dir / "hf");

  // Another seed draws other weights; the export's replace every one of them.
  Recipe other = tiny_recipe(dir, {"run.seed=77"});
  auto fresh = build_placed_model(other);
  REQUIRE(logits_of(*fresh).to_f64_vector() != before);
  SafetensorsFile f = load_safetensors(dir / "hf/model.safetensors");
  std::map<std::string, Tensor> by_eat_name;
  for (const auto& [name, t] : f.tensors) by_eat_name[eat_name_of_llama(name)] = t;
  REQUIRE(by_eat_name.size() == fresh->parameters().size());
  for (const Parameter& p : fresh->parameters()) p.tensor.copy_from(by_eat_name.at(p.name));
  CHECK(logits_of(*fresh).to_f64_vector() == before);
}

TEST_CASE("export: the tokenizer goes along; what Llama lacks is refused; other families keep eat's layout") {
  TempDir dir("export_misc");
  const data::SentencePieceTokenizer tokenizer(
      data::train_sentencepiece(test::synthetic_text(400), {300, "bpe"}), "test model");
  Recipe recipe = tiny_recipe(dir);
  auto model = build_placed_model(recipe);
  ExportResult r = export_model(recipe, *model, tokenizer, dir / "hf");
  CHECK(r.files == std::vector<std::string>{"config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json"});
  CHECK(read_text(dir / "hf/tokenizer.model") == tokenizer.model_bytes());
  CHECK(read_json(dir / "hf/tokenizer_config.json")["tokenizer_class"] == "LlamaTokenizer");
  CHECK(read_json(dir / "hf/config.json")["eos_token_id"] == 1);

  Recipe windowed = tiny_recipe(dir, {"model.transformer.window=8"});
  CHECK_THROWS_WITH_AS(export_model(windowed, *build_placed_model(windowed), tokenizer, dir / "w"),
                       doctest::Contains("model.transformer.window = 8 (sliding-window attention) has no "
                                         "LlamaForCausalLM equivalent"),
                       Error);
  CHECK_THROWS_WITH_AS(llama_name("layers.0.attn.qkv_proj.weight"),
                       doctest::Contains("'layers.0.attn.qkv_proj.weight' has no Hugging Face Llama name"), Error);

  Recipe rat = parse_recipe(test::recipe_text(dir.str(), "rat"), "rat.toml");
  auto rat_model = build_placed_model(rat);
  ExportResult e = export_model(rat, *rat_model, tokenizer, dir / "rat");
  CHECK(e.layout == "eat");
  const nlohmann::json c = read_json(dir / "rat/config.json");
  CHECK(c["format"] == "eat");
  CHECK(c["family"] == "rat");
  CHECK(c["d_model"] == 32);
  CHECK(c["options"]["chunk"] == 16);
  CHECK(c["num_parameters"] == rat_model->num_parameters());
  SafetensorsFile f = load_safetensors(dir / "rat/model.safetensors");
  REQUIRE(f.tensors.size() == rat_model->parameters().size());
  CHECK(f.tensors[0].first == rat_model->parameters()[0].name);
}
