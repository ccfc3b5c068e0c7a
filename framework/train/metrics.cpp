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

struct Series {
  std::vector<double> x, y;
};

std::string polyline(const Series& s, double x0, double x1, double y0, double y1, const char* style) {
  std::ostringstream os;
  os << "<polyline fill=\"none\" " << style << " points=\"";
  for (size_t i = 0; i < s.x.size(); ++i) {
    double px = 70 + 700 * (s.x[i] - x0) / std::max(x1 - x0, 1e-12);
    double py = 30 + 380 * (1 - (s.y[i] - y0) / std::max(y1 - y0, 1e-12));
    os << px << "," << py << " ";
  }
  os << "\"/>\n";
  return os.str();
}

}  // namespace

std::string loss_curve_svg(const std::vector<nlohmann::json>& lines, const std::string& title) {
  Series train, smooth, val;
  double ema = 0;
  for (const auto& j : lines) {
    if (!j.contains("step")) continue;
    double step = j["step"].get<double>();
    if (j.contains("loss") && j["loss"].is_number()) {
      double l = j["loss"].get<double>();
      ema = train.x.empty() ? l : 0.9 * ema + 0.1 * l;  // exponential smoothing for readability
      train.x.push_back(step);
      train.y.push_back(l);
      smooth.x.push_back(step);
      smooth.y.push_back(ema);
    }
    if (j.contains("val_loss") && j["val_loss"].is_number()) {
      val.x.push_back(step);
      val.y.push_back(j["val_loss"].get<double>());
    }
  }
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  std::vector<double> xs = train.x, ys = train.y;
  xs.insert(xs.end(), val.x.begin(), val.x.end());
  ys.insert(ys.end(), val.y.begin(), val.y.end());
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
     << "<text x=\"400\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">" << title << "</text>\n"
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
    os << "<text x=\"" << px << "\" y=\"428\" text-anchor=\"middle\">" << static_cast<long long>(std::llround(v))
       << "</text>\n";
  }
  os << "<text x=\"420\" y=\"450\" text-anchor=\"middle\">step</text>\n"
     << "<text x=\"16\" y=\"220\" transform=\"rotate(-90 16 220)\" text-anchor=\"middle\">loss (nats/token)</text>\n";
  if (!train.x.empty()) {
    os << polyline(train, x0, x1, y0, y1, "stroke=\"#9ecae1\" stroke-width=\"1\"");
    os << polyline(smooth, x0, x1, y0, y1, "stroke=\"#08519c\" stroke-width=\"2\"");
  }
  if (!val.x.empty()) {
    os << polyline(val, x0, x1, y0, y1, "stroke=\"#d94801\" stroke-width=\"2\"");
    for (size_t i = 0; i < val.x.size(); ++i) {
      double px = 70 + 700 * (val.x[i] - x0) / std::max(x1 - x0, 1e-12);
      double py = 30 + 380 * (1 - (val.y[i] - y0) / std::max(y1 - y0, 1e-12));
      os << "<circle cx=\"" << px << "\" cy=\"" << py << "\" r=\"3\" fill=\"#d94801\"/>\n";
    }
  }
  os << "<text x=\"650\" y=\"50\" fill=\"#08519c\">train (smoothed)</text>\n"
     << "<text x=\"650\" y=\"66\" fill=\"#d94801\">validation</text>\n</svg>\n";
  return os.str();
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
