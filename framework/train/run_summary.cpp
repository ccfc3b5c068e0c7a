#include "framework/train/run_summary.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <type_traits>

#include "base/error.h"
#include "base/median.h"
#include "framework/io/checkpoint_dir.h"
#include "framework/train/checkpoint.h"
#include "framework/train/metrics.h"

namespace eat {

namespace fs = std::filesystem;

namespace {

std::optional<double> median_or_none(const std::vector<double>& v) {
  if (v.empty()) return std::nullopt;
  return median(v);
}

bool has_number(const nlohmann::json& j, const char* key) { return j.contains(key) && j[key].is_number(); }

std::vector<nlohmann::json> read_metrics(const fs::path& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string text; std::getline(in, text);) {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && has_number(j, "step")) lines.push_back(std::move(j));  // a line cut short by a crash is skipped
  }
  return lines;
}

// The newest checkpoint's family, parameter count and tokens per step; nothing when the run has
// no readable checkpoint.
void read_checkpoint(const std::string& run_dir, RunSummary& s, std::optional<int64_t>& tokens_per_step) {
  const auto checkpoints = list_checkpoints(run_dir);
  if (checkpoints.empty()) return;
  try {
    const TrainState state = checkpoint_state(checkpoints.back().path);
    const Recipe recipe = checkpoint_recipe(checkpoints.back().path);
    s.family = state.family;
    s.parameters = state.num_parameters;
    tokens_per_step = recipe.train.global_batch * recipe.data.seq_len;
  } catch (const std::exception&) {
    // A damaged checkpoint leaves these pieces n/a; the log still has the rest.
  }
}

}  // namespace

RunSummary summarize_run(const std::string& run_dir) {
  const fs::path metrics = fs::path(run_dir) / "metrics.jsonl";
  EAT_CHECK(fs::is_regular_file(metrics) || fs::is_directory(fs::path(run_dir) / "checkpoints"), "compare: ", run_dir,
            " is not a run directory (it holds neither metrics.jsonl nor checkpoints/)");
  RunSummary s;
  s.dir = run_dir;
  s.name = fs::path(run_dir).lexically_normal().filename().string();
  if (s.name.empty()) s.name = fs::path(run_dir).lexically_normal().parent_path().filename().string();  // "runs/x/"
  std::optional<int64_t> tokens_per_step;
  read_checkpoint(run_dir, s, tokens_per_step);

  std::vector<double> losses, tokens_per_s, mfu, steps, val_steps, val_losses;
  double wall = 0;
  bool timed = false;
  for (const nlohmann::json& j : read_metrics(metrics)) {
    const int64_t step = j["step"].get<int64_t>();
    if (has_number(j, "loss")) {
      s.steps = step;
      steps.push_back(static_cast<double>(step));
      losses.push_back(j["loss"].get<double>());
      if (has_number(j, "tokens_per_s")) tokens_per_s.push_back(j["tokens_per_s"].get<double>());
      if (has_number(j, "mfu")) mfu.push_back(j["mfu"].get<double>());
      if (has_number(j, "step_seconds")) {
        wall += j["step_seconds"].get<double>();
        timed = true;
      }
      if (has_number(j, "device_peak_allocated"))
        s.peak_memory_bytes = std::max(s.peak_memory_bytes.value_or(0), j["device_peak_allocated"].get<int64_t>());
    }
    if (has_number(j, "val_loss")) {
      s.val_step = step;
      s.val_loss = j["val_loss"].get<double>();
      s.val_ppl = has_number(j, "val_ppl") ? std::optional<double>(j["val_ppl"].get<double>()) : std::nullopt;
      s.val_bpb = has_number(j, "val_bpb") ? std::optional<double>(j["val_bpb"].get<double>()) : std::nullopt;
      val_steps.push_back(static_cast<double>(step));
      val_losses.push_back(*s.val_loss);
    }
  }
  if (!losses.empty()) {
    s.final_loss_steps = std::min<int64_t>(kFinalLossSteps, static_cast<int64_t>(losses.size()));
    double sum = 0;
    for (size_t i = losses.size() - static_cast<size_t>(s.final_loss_steps); i < losses.size(); ++i) sum += losses[i];
    s.train_loss = sum / static_cast<double>(s.final_loss_steps);
  }
  s.tokens_per_s = median_or_none(tokens_per_s);
  s.mfu = median_or_none(mfu);
  if (timed) s.wall_seconds = wall;
  if (tokens_per_step) {
    const double per_step = static_cast<double>(*tokens_per_step);
    if (s.steps) s.tokens_seen = *s.steps * *tokens_per_step;
    for (double step : steps) s.train_tokens.push_back(step * per_step);
    s.train_losses = losses;
    for (double step : val_steps) s.val_tokens.push_back(step * per_step);
    s.val_losses = val_losses;
  }
  return s;
}

std::vector<RunSummary> summarize_runs(const std::vector<std::string>& run_dirs) {
  std::vector<RunSummary> runs;
  for (const std::string& dir : run_dirs) runs.push_back(summarize_run(dir));
  for (RunSummary& r : runs) {
    // Two runs of one name (the same recipe under two out_dirs) are told apart by their paths.
    const auto same = std::count_if(runs.begin(), runs.end(), [&](const RunSummary& o) { return o.name == r.name; });
    if (same > 1) r.name = r.dir;
  }
  return runs;
}

namespace {

template <typename T>
std::string formatted(const std::optional<T>& v, const char* format, double scale = 1) {
  if (!v) return "n/a";
  char buf[64];
  if constexpr (std::is_integral_v<T>) std::snprintf(buf, sizeof buf, format, static_cast<long long>(*v));
  else std::snprintf(buf, sizeof buf, format, *v * scale);
  return buf;
}

template <typename T>
nlohmann::ordered_json or_null(const std::optional<T>& v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

}  // namespace

std::string compare_markdown(const std::vector<RunSummary>& runs) {
  std::string out = "| run | family | parameters | tokens seen | train loss (mean of last " + std::to_string(kFinalLossSteps) +
                    " steps) | val loss | val ppl | val bits/byte | tokens/s (median) | MFU (median) | peak memory | "
                    "wall time (steps) |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
  for (const RunSummary& r : runs) {
    const std::string cells[] = {r.name,
                                 r.family.value_or("n/a"),
                                 formatted(r.parameters, "%lld"),
                                 formatted(r.tokens_seen, "%lld"),
                                 formatted(r.train_loss, "%.4f"),
                                 formatted(r.val_loss, "%.4f"),
                                 formatted(r.val_ppl, "%.3f"),
                                 formatted(r.val_bpb, "%.4f"),
                                 formatted(r.tokens_per_s, "%.0f"),
                                 formatted(r.mfu, "%.2f%%", 100),
                                 formatted(r.peak_memory_bytes ? std::optional<double>(*r.peak_memory_bytes) : std::nullopt,
                                           "%.1f MiB", 1.0 / (1024 * 1024)),
                                 formatted(r.wall_seconds, "%.1f s")};
    out += "|";
    for (const std::string& c : cells) out += " " + c + " |";
    out += "\n";
  }
  return out;
}

nlohmann::ordered_json compare_json(const std::vector<RunSummary>& runs) {
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  for (const RunSummary& r : runs)
    all.push_back({{"run", r.name},
                   {"dir", r.dir},
                   {"family", or_null(r.family)},
                   {"parameters", or_null(r.parameters)},
                   {"steps", or_null(r.steps)},
                   {"tokens_seen", or_null(r.tokens_seen)},
                   {"train_loss", or_null(r.train_loss)},
                   {"train_loss_steps", r.final_loss_steps},
                   {"val_loss", or_null(r.val_loss)},
                   {"val_ppl", or_null(r.val_ppl)},
                   {"val_bpb", or_null(r.val_bpb)},
                   {"val_step", or_null(r.val_step)},
                   {"tokens_per_s", or_null(r.tokens_per_s)},
                   {"mfu", or_null(r.mfu)},
                   {"peak_memory_bytes", or_null(r.peak_memory_bytes)},
                   {"wall_seconds", or_null(r.wall_seconds)}});
  return all;
}

std::string compare_svg(const std::vector<RunSummary>& runs) {
  static const char* palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  std::vector<PlotSeries> series;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunSummary& r = runs[i];
    PlotSeries train, val;
    train.colour = val.colour = palette[i % std::size(palette)];
    train.x = r.train_tokens;
    train.y = smoothed_losses(r.train_losses);
    train.width = 1.5;
    train.dashed = true;
    val.x = r.val_tokens;
    val.y = r.val_losses;
    val.dots = true;
    val.legend = r.name + (r.train_tokens.empty() ? " (no checkpoint: not drawn)" : "");
    series.push_back(std::move(train));
    series.push_back(std::move(val));
  }
  return plot_svg(series, "validation (dots) and smoothed training loss (dashed)", "tokens seen");
}

}  // namespace eat
