#pragma once
// Learning-rate schedules over steps s = 0 .. total-1:
//   warm-up:  s < warmup: lr = peak * (s + 1) / warmup  (linear from peak/warmup to peak)
//   then, with p running from 0 (first step after warm-up) to 1 (the last step):
//   cosine:   ratio = min + (1 - min) * (1 + cos(pi p)) / 2
//   linear:   ratio = min + (1 - min) * (1 - p)
//   wsd:      warmup-stable-decay: ratio 1 until the last decay_fraction of all steps, then
//             linear from 1 to min over those steps (p measured over the decay phase only)
//   constant: ratio 1
// lr = peak * ratio. The last step reaches exactly peak * min_lr_ratio.
#include <cstdint>
#include <string>

namespace eat {

enum class ScheduleKind { cosine, linear, wsd, constant };
ScheduleKind parse_schedule_kind(const std::string& name);  // error lists the valid names
const char* schedule_kind_name(ScheduleKind kind);

struct LrSchedule {
  ScheduleKind kind = ScheduleKind::cosine;
  double peak_lr = 3e-4;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double min_lr_ratio = 0.1;
  double decay_fraction = 0.2;  // wsd only

  void validate() const;  // errors name the offending field
  double lr_at(int64_t step) const;
};

}  // namespace eat
