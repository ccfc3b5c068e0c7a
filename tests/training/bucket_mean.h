#pragma once
// The token-weighted mean of eval's position buckets and their token count, which the CPU and
// the device tests hold to the overall loss and token count.
#include <cstdint>
#include <utility>
#include <vector>

#include "framework/train/evaluate.h"

namespace eat::test {

inline std::pair<double, int64_t> bucket_mean(const std::vector<PositionBucket>& buckets) {
  double sum = 0;
  int64_t tokens = 0;
  for (const PositionBucket& b : buckets) {
    sum += b.loss * static_cast<double>(b.tokens);
    tokens += b.tokens;
  }
  return {tokens > 0 ? sum / static_cast<double>(tokens) : 0.0, tokens};
}

}  // namespace eat::test
