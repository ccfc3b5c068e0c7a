#pragma once
// Per-head decays shared by the gpu tests of the decayed linear-attention kernels.
#include <cstdint>
#include <vector>

namespace eat::test {

// The pools the kernel tests go through: no decay, strong decay, and a mix across the heads.
inline const std::vector<std::vector<double>> kDecayPools{{1.0}, {0.05}, {1.0, 0.05, 0.9, 0.999}};

// One lambda per head, cycling through the pool (e.g. no decay, strong decay, the model's range).
inline std::vector<double> decays(int64_t H, const std::vector<double>& pool) {
  std::vector<double> out;
  for (int64_t h = 0; h < H; ++h) out.push_back(pool[static_cast<size_t>(h) % pool.size()]);
  return out;
}

}  // namespace eat::test
