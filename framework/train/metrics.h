#pragma once
// The run's record: RUN_DIR/metrics.jsonl (one JSON object per line: training steps carry loss,
// lr, grad_norm, tokens_per_s, mfu; validation lines carry val_loss) and an SVG loss curve.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace eat {

class MetricsLog {
 public:
  // Opens path for appending. When resuming from `resume_step`, lines of later steps (written by
  // the interrupted run after its last checkpoint) are dropped first, so the file matches the
  // resumed run exactly.
  MetricsLog(std::string path, int64_t resume_step);
  void append(const nlohmann::json& line);
  const std::vector<nlohmann::json>& lines() const { return lines_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<nlohmann::json> lines_;
};

// A self-contained SVG: training loss (light, plus a smoothed line) and validation loss (dots)
// against step.
std::string loss_curve_svg(const std::vector<nlohmann::json>& lines, const std::string& title);
void write_loss_curve(const std::vector<nlohmann::json>& lines, const std::string& title, const std::string& path);

}  // namespace eat
