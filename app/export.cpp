// eat export --checkpoint DIR --out DIR [--format hf]
#include <cstdio>

#include "app/checkpoint_model.h"
#include "app/commands.h"
#include "framework/io/model_export.h"

namespace eat::cli {

namespace {

struct ExportArgs {
  std::string checkpoint, out, format = "hf";
};

void run_export(const ExportArgs& a) {
  // On the CPU in f32 (bf16 runs keep f32 masters): the weights as trained, wherever that was.
  CheckpointModel loaded = load_checkpoint_model(a.checkpoint, "cpu", "export");
  ExportResult r = export_model(loaded.recipe, *loaded.model, *loaded.tokenizer, a.out);
  std::string files;
  for (const std::string& f : r.files) files += (files.empty() ? "" : ", ") + f;
  if (r.layout == "hf")
    std::printf("wrote %s (%s): LlamaForCausalLM.from_pretrained(\"%s\") loads it\n", a.out.c_str(), files.c_str(),
                a.out.c_str());
  else
    std::printf("wrote %s (%s): the %s family has no Hugging Face class, so this is eat's own layout (eat's parameter "
                "names, config.json for eat's loader)\n",
                a.out.c_str(), files.c_str(), loaded.recipe.model.family.c_str());
  if (loaded.tokenizer->model_bytes().empty())
    std::printf("the run used byte tokens: id = the byte's value, %lld = end of text (no tokenizer file)\n",
                static_cast<long long>(loaded.tokenizer->end_of_text()));
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Export a checkpoint's model for other tools (Hugging Face layout)");
  auto a = std::make_shared<ExportArgs>();
  cmd->add_option("--checkpoint", a->checkpoint, "Checkpoint directory, or a run directory (its newest checkpoint)")
      ->required();
  cmd->add_option("--out", a->out, "Output directory")->required();
  cmd->add_option("--format", a->format,
                  "hf: the transformer family as LlamaForCausalLM; other families in eat's own layout")
      ->check(CLI::IsMember({"hf"}))
      ->capture_default_str();
  cmd->callback([a] { run_export(*a); });
}

}  // namespace eat::cli
