#include "framework/optim/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "base/error.h"

namespace eat {

ScheduleKind parse_schedule_kind(const std::string& name) {
  if (name == "cosine") return ScheduleKind::cosine;
  if (name == "linear") return ScheduleKind::linear;
  if (name == "wsd") return ScheduleKind::wsd;
  if (name == "constant") return ScheduleKind::constant;
  fail("unknown schedule kind '", name, "' (expected cosine, linear, wsd or constant)");
}

const char* schedule_kind_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::cosine: return "cosine";
    case ScheduleKind::linear: return "linear";
    case ScheduleKind::wsd: return "wsd";
    case ScheduleKind::constant: return "constant";
  }
  return "?";
}

void LrSchedule::validate() const {
  EAT_CHECK(peak_lr > 0, "schedule: lr must be positive, got ", peak_lr);
  EAT_CHECK(total_steps > 0, "schedule: total steps must be positive, got ", total_steps);
  EAT_CHECK(warmup_steps >= 0 && warmup_steps <= total_steps, "schedule: warmup ", warmup_steps,
            " must be in [0, steps = ", total_steps, "]");
  EAT_CHECK(min_lr_ratio >= 0 && min_lr_ratio <= 1, "schedule: min_lr_ratio must be in [0, 1], got ", min_lr_ratio);
  EAT_CHECK(decay_fraction > 0 && decay_fraction <= 1, "schedule: decay_fraction must be in (0, 1], got ", decay_fraction);
}

double LrSchedule::lr_at(int64_t step) const {
  if (step < warmup_steps) return peak_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  auto progress = [](int64_t s, int64_t begin, int64_t end) {  // 0 at begin, 1 at end - 1
    if (end - begin <= 1) return 1.0;
    return std::clamp(static_cast<double>(s - begin) / static_cast<double>(end - 1 - begin), 0.0, 1.0);
  };
  double ratio = 1.0;
  switch (kind) {
    case ScheduleKind::constant: ratio = 1.0; break;
    case ScheduleKind::cosine: {
      double p = progress(step, warmup_steps, total_steps);
      ratio = min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + std::cos(std::numbers::pi * p));
      break;
    }
    case ScheduleKind::linear: {
      double p = progress(step, warmup_steps, total_steps);
      ratio = min_lr_ratio + (1 - min_lr_ratio) * (1 - p);
      break;
    }
    case ScheduleKind::wsd: {
      int64_t decay_steps = std::max<int64_t>(1, std::llround(decay_fraction * static_cast<double>(total_steps)));
      int64_t decay_begin = std::max(warmup_steps, total_steps - decay_steps);
      if (step < decay_begin) {
        ratio = 1.0;
      } else {
        double p = progress(step, decay_begin, total_steps);
        ratio = min_lr_ratio + (1 - min_lr_ratio) * (1 - p);
      }
      break;
    }
  }
  return peak_lr * ratio;
}

}  // namespace eat
