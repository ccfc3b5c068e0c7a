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

// One line of a loss plot: points (x, y) drawn as a line of the colour, optionally dashed and with a
// dot at each point; named in the legend unless legend is empty.
struct PlotSeries {
  std::vector<double> x, y;
  std::string colour = "#08519c";
  double width = 2;
  bool dots = false;
  bool dashed = false;
  std::string legend;
};

// A self-contained SVG of loss (nats/token) against x_label, the axes fitted to all the series.
std::string plot_svg(const std::vector<PlotSeries>& series, const std::string& title, const std::string& x_label);

// The training loss curve as plotted: an exponential moving average (0.9 of the previous value).
std::vector<double> smoothed_losses(const std::vector<double>& losses);

// A self-contained SVG: training loss (light, plus a smoothed line) and validation loss (dots)
// against step.
std::string loss_curve_svg(const std::vector<nlohmann::json>& lines, const std::string& title);
void write_loss_curve(const std::vector<nlohmann::json>& lines, const std::string& title, const std::string& path);

}  // namespace eat
