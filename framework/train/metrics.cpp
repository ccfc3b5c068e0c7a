#include "framework/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"

namespace eat {

MetricsLog::MetricsLog(std::string path, int64_t resume_step) : path_(std::move(path)) {
  std::ifstream in(path_);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;  // a line cut short by a crash
    if (j.value("step", int64_t{0}) <= resume_step) lines_.push_back(j);
  }
  std::ofstream out(path_, std::ios::trunc);
  EAT_CHECK(out, "cannot write ", path_);
  for (const auto& j : lines_) out << j.dump() << "\n";
}

void MetricsLog::append(const nlohmann::json& line) {
  std::ofstream out(path_, std::ios::app);
  EAT_CHECK(out, "cannot append to ", path_);
  out << line.dump() << "\n";
  lines_.push_back(line);
}

namespace {

// Plot area: x in [70, 770], y in [30, 410] of an 800 x 460 canvas.
double plot_x(double x, double x0, double x1) { return 70 + 700 * (x - x0) / std::max(x1 - x0, 1e-12); }
double plot_y(double y, double y0, double y1) { return 30 + 380 * (1 - (y - y0) / std::max(y1 - y0, 1e-12)); }

// Axis labels: integers as they are up to 9999, then with a k, M or G suffix (token counts).
std::string axis_number(double v) {
  char buf[32];
  const double a = std::fabs(v);
  if (a >= 1e9) std::snprintf(buf, sizeof buf, "%.3gG", v / 1e9);
  else if (a >= 1e6) std::snprintf(buf, sizeof buf, "%.3gM", v / 1e6);
  else if (a >= 1e4) std::snprintf(buf, sizeof buf, "%.3gk", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(std::llround(v)));
  return buf;
}

// Run names and titles are user text: escaped so that they cannot break the markup.
std::string xml_escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

std::string polyline(const PlotSeries& s, double x0, double x1, double y0, double y1) {
  std::ostringstream os;
  os << "<polyline fill=\"none\" stroke=\"" << s.colour << "\" stroke-width=\"" << s.width << "\""
     << (s.dashed ? " stroke-dasharray=\"6 3\"" : "") << " points=\"";
  for (size_t i = 0; i < s.x.size(); ++i) os << plot_x(s.x[i], x0, x1) << "," << plot_y(s.y[i], y0, y1) << " ";
  os << "\"/>\n";
  return os.str();
}

}  // namespace

std::vector<double> smoothed_losses(const std::vector<double>& losses) {
  std::vector<double> out(losses.size());
  double ema = 0;
  for (size_t i = 0; i < losses.size(); ++i) {
    ema = i == 0 ? losses[i] : 0.9 * ema + 0.1 * losses[i];  // exponential smoothing for readability
    out[i] = ema;
  }
  return out;
}

std::string plot_svg(const std::vector<PlotSeries>& series, const std::string& title, const std::string& x_label) {
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  std::vector<double> xs, ys;
  for (const PlotSeries& s : series) {
    xs.insert(xs.end(), s.x.begin(), s.x.end());
    ys.insert(ys.end(), s.y.begin(), s.y.end());
  }
  if (!xs.empty()) {
    x0 = *std::min_element(xs.begin(), xs.end());
    x1 = std::max(*std::max_element(xs.begin(), xs.end()), x0 + 1);
    y0 = *std::min_element(ys.begin(), ys.end());
    y1 = *std::max_element(ys.begin(), ys.end());
    double pad = 0.05 * std::max(y1 - y0, 1e-3);
    y0 -= pad;
    y1 += pad;
  }
  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"460\" font-family=\"sans-serif\" font-size=\"12\">\n"
     << "<rect width=\"800\" height=\"460\" fill=\"white\"/>\n"
     << "<text x=\"400\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">" << xml_escaped(title) << "</text>\n"
     << "<rect x=\"70\" y=\"30\" width=\"700\" height=\"380\" fill=\"none\" stroke=\"#888\"/>\n";
  for (int i = 0; i <= 4; ++i) {  // y ticks
    double v = y0 + (y1 - y0) * i / 4, py = 30 + 380 * (1 - i / 4.0);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", v);
    os << "<line x1=\"66\" x2=\"770\" y1=\"" << py << "\" y2=\"" << py << "\" stroke=\"#eee\"/>"
       << "<text x=\"62\" y=\"" << py + 4 << "\" text-anchor=\"end\">" << buf << "</text>\n";
  }
  for (int i = 0; i <= 4; ++i) {  // x ticks
    double v = x0 + (x1 - x0) * i / 4, px = 70 + 700 * i / 4.0;
    os << "<text x=\"" << px << "\" y=\"428\" text-anchor=\"middle\">" << axis_number(v) << "</text>\n";
  }
  os << "<text x=\"420\" y=\"450\" text-anchor=\"middle\">" << xml_escaped(x_label) << "</text>\n"
     << "<text x=\"16\" y=\"220\" transform=\"rotate(-90 16 220)\" text-anchor=\"middle\">loss (nats/token)</text>\n";
  for (const PlotSeries& s : series) {
    if (s.x.empty()) continue;
    os << polyline(s, x0, x1, y0, y1);
    if (s.dots)
      for (size_t i = 0; i < s.x.size(); ++i)
        os << "<circle cx=\"" << plot_x(s.x[i], x0, x1) << "\" cy=\"" << plot_y(s.y[i], y0, y1) << "\" r=\"3\" fill=\""
           << s.colour << "\"/>\n";
  }
  int row = 0;
  for (const PlotSeries& s : series)
    if (!s.legend.empty())
      os << "<text x=\"650\" y=\"" << 50 + 16 * row++ << "\" fill=\"" << s.colour << "\">" << xml_escaped(s.legend) << "</text>\n";
  os << "</svg>\n";
  return os.str();
}

std::string loss_curve_svg(const std::vector<nlohmann::json>& lines, const std::string& title) {
  PlotSeries train, smooth, val;
  train.colour = "#9ecae1";
  train.width = 1;
  val.colour = "#d94801";
  val.dots = true;
  val.legend = "validation";
  for (const auto& j : lines) {
    if (!j.contains("step")) continue;
    double step = j["step"].get<double>();
    if (j.contains("loss") && j["loss"].is_number()) {
      train.x.push_back(step);
      train.y.push_back(j["loss"].get<double>());
    }
    if (j.contains("val_loss") && j["val_loss"].is_number()) {
      val.x.push_back(step);
      val.y.push_back(j["val_loss"].get<double>());
    }
  }
  smooth.x = train.x;
  smooth.y = smoothed_losses(train.y);
  smooth.legend = "train (smoothed)";
  return plot_svg({train, smooth, val}, title, "step");
}

void write_loss_curve(const std::vector<nlohmann::json>& lines, const std::string& title, const std::string& path) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    EAT_CHECK(out, "cannot write ", tmp);
    out << loss_curve_svg(lines, title);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace eat
