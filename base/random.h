#pragma once
// A deterministic random generator whose whole state is one 64-bit counter (plus the seed), so
// a checkpoint can store it exactly. Each draw hashes (seed, counter) with splitmix64.
#include <cstdint>

namespace eat {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}

  uint64_t next_u64() { return mix(seed_ * 0x9E3779B97F4A7C15ull + ++counter_); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  // Standard normal by Box-Muller; uses two draws, keeps no spare so the state stays one counter.
  double normal();

  uint64_t seed() const { return seed_; }
  uint64_t counter() const { return counter_; }

 private:
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t seed_;
  uint64_t counter_ = 0;
};

}  // namespace eat
