#pragma once
// The median of a sample (the mean of the two middle values when their number is even): what the
// benches and the run summaries report, so a noisy machine's outliers do not move them.
#include <algorithm>
#include <vector>

#include "base/error.h"

namespace eat {

inline double median(std::vector<double> v) {
  EAT_CHECK(!v.empty(), "median of no values");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace eat
