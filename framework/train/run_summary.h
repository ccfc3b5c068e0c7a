#pragma once
// What `eat compare` reads from a run directory: its metrics.jsonl and the recipe and state of its
// newest checkpoint, summarized (one row of the comparison) together with its loss curves against
// tokens seen. A piece the run did not record is left empty and shown as "n/a".
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace eat {

// The final training loss is the mean over this many last logged steps (fewer if fewer logged).
inline constexpr int64_t kFinalLossSteps = 10;

struct RunSummary {
  std::string dir, name;  // name: the directory's last component (the trainer names it run.name)
  std::optional<std::string> family;
  std::optional<int64_t> parameters;
  std::optional<int64_t> steps;        // the last logged training step
  std::optional<int64_t> tokens_seen;  // steps x global batch x seq_len
  std::optional<double> train_loss;    // mean of the last final_loss_steps logged steps (kFinalLossSteps or fewer)
  int64_t final_loss_steps = 0;
  std::optional<double> val_loss, val_ppl, val_bpb;  // the last validation line
  std::optional<int64_t> val_step;
  std::optional<double> tokens_per_s, mfu;      // medians over the logged steps
  std::optional<int64_t> peak_memory_bytes;     // the device's peak allocation (GPU runs log it)
  std::optional<double> wall_seconds;           // sum of step_seconds: validation and checkpoints excluded
  // Loss curves against tokens seen (empty without a checkpoint's recipe to count tokens).
  std::vector<double> train_tokens, train_losses, val_tokens, val_losses;
};

// Reads RUN_DIR; an error naming it when it holds neither metrics.jsonl nor a checkpoint.
RunSummary summarize_run(const std::string& run_dir);
// Every directory's summary; two runs of one name are named by their directories instead.
std::vector<RunSummary> summarize_runs(const std::vector<std::string>& run_dirs);

// The comparison as a markdown table (one row a run), and as JSON (an array, null for n/a).
std::string compare_markdown(const std::vector<RunSummary>& runs);
nlohmann::ordered_json compare_json(const std::vector<RunSummary>& runs);

// Validation (dots and lines) and smoothed training loss (dashed) of every run against tokens
// seen, one colour a run, the legend by run name.
std::string compare_svg(const std::vector<RunSummary>& runs);

}  // namespace eat
