#pragma once
// Shapes and per-head decays shared by the gpu tests of the decayed linear-attention kernels.
#include <cstdint>
#include <vector>

namespace eat::test {

// q, k [B, T, H, d], v [B, T, H, e], states [B, H, d, e].
struct Dims {
  int64_t B, T, H, d, e;
};

// One lambda per head, cycling through the pool (e.g. no decay, strong decay, the model's range).
inline std::vector<double> decays(int64_t H, const std::vector<double>& pool) {
  std::vector<double> out;
  for (int64_t h = 0; h < H; ++h) out.push_back(pool[static_cast<size_t>(h) % pool.size()]);
  return out;
}

}  // namespace eat::test
