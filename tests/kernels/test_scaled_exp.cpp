// scaled_exp (kernels/cpu/scaled_exp.h), the exponentials of attention's score rows: against
// exp in f64 over the whole range a row meets, the underflow end, and the promise that a value's
// bits do not depend on where it lies in the row.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "kernels/cpu/scaled_exp.h"
#include <doctest/doctest.h>

using namespace eat;

namespace {

// The widest kernel the build has, through scaled_exp, and the AVX2 one where an AVX-512 build has
// it too (what portable builds run).
std::vector<std::pair<const char*, void (*)(float*, int64_t, float, float)>> kernels() {
  std::vector<std::pair<const char*, void (*)(float*, int64_t, float, float)>> all = {
      {"widest", [](float* x, int64_t n, float scale, float shift) { cpu::scaled_exp(x, n, scale, shift); }}};
#if defined(EAT_AVX512_VEC) && defined(EAT_AVX2_VEC)
  all.push_back({"avx2", [](float* x, int64_t n, float scale, float shift) {
                   cpu::scaled_exp_detail::scaled_exp_with<cpu::scaled_exp_detail::Avx2>(x, n, scale, shift);
                 }});
#endif
  return all;
}

}  // namespace

TEST_CASE("scaled_exp: exp(scale x - shift) within 2 ulp of f64 from e^-80 to e^2, and tiny or zero below") {
  // 4096 scores (a whole number of vectors for every width), scaled as attention's 1/8 and
  // shifted by a row maximum of 37.
  const float scale = 0.125f, shift = 37.0f;
  std::vector<float> x(4096);
  for (size_t i = 0; i < x.size(); ++i) x[i] = (shift - 80.0f + 82.0f * static_cast<float>(i) / 4095.0f) / scale;
  for (const auto& [name, kernel] : kernels()) {
    CAPTURE(name);
    std::vector<float> y = x;
    kernel(y.data(), static_cast<int64_t>(y.size()), scale, shift);
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      // t = scale x - shift as the kernel rounds it (one fused multiply-add), then exp in f64.
      const double t = static_cast<double>(std::fma(x[i], scale, -shift));
      const double want = std::exp(t);
      worst = std::max(worst, std::abs(y[i] - want) / want);
    }
    // 2 ulp of f32 (2^-23 relative each); seen: 1.2e-7 with AVX-512
    CHECK(worst <= 2.4e-7);

    // Far below the row's maximum: 0, a subnormal, or (with AVX2) about 1.6e-38; never negative,
    // never a NaN.
    std::vector<float> low(64);
    for (size_t i = 0; i < low.size(); ++i) low[i] = -1e4f * static_cast<float>(i + 1);
    kernel(low.data(), static_cast<int64_t>(low.size()), 1.0f, 0.0f);
    for (float v : low) CHECK((v >= 0.0f && v <= 2e-38f));
  }
}

TEST_CASE("scaled_exp: a value's bits do not depend on where it lies in the row") {
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 20.0f);
  std::vector<float> row(256);
  for (float& v : row) v = normal(gen);
  std::vector<float> whole = row;
  cpu::scaled_exp(whole.data(), 256, 0.3f, 4.0f);
  for (int64_t start : {0, 16, 64, 240}) {
    std::vector<float> part(row.begin() + start, row.begin() + start + 16);
    cpu::scaled_exp(part.data(), 16, 0.3f, 4.0f);
    CHECK(std::vector<float>(whole.begin() + start, whole.begin() + start + 16) == part);
  }
}

TEST_CASE("scaled_exp in f64 is Eigen's exp of scale x - shift") {
  std::vector<double> x = {-3.0, -1.5, 0.0, 0.25, 2.0, -40.0, 7.0, 1e-3};
  std::vector<double> y = x;
  cpu::scaled_exp(y.data(), static_cast<int64_t>(y.size()), 0.5, 1.0);
  for (size_t i = 0; i < x.size(); ++i) CHECK(std::abs(y[i] - std::exp(0.5 * x[i] - 1.0)) <= 1e-15 * std::exp(0.5 * x[i] - 1.0));
}

namespace {

// The band functions of a vector unit: the widest the build has (what attention calls, through
// cpu::band_extreme etc.) and AVX2 where an AVX-512 build has it too.
struct BandKernels {
  const char* name;
  int64_t lanes;
  float (*extreme)(const float*, int64_t, int64_t, bool);
  float (*exp_band)(float*, int64_t, float, float, int64_t, int64_t);
  void (*probabilities)(float*, float*, int64_t, float, float, float, int64_t, int64_t);
};

std::vector<BandKernels> band_kernels() {
  std::vector<BandKernels> all = {{"widest", Eigen::internal::packet_traits<float>::size,
                                   [](const float* x, int64_t lo, int64_t hi, bool largest) {
                                     return cpu::band_extreme(x, lo, hi, largest);
                                   },
                                   [](float* x, int64_t n, float scale, float shift, int64_t lo, int64_t hi) {
                                     return cpu::scaled_exp_band(x, n, scale, shift, lo, hi);
                                   },
                                   [](float* p, float* g, int64_t n, float scale, float shift, float d, int64_t lo,
                                      int64_t hi) { cpu::band_probabilities(p, g, n, scale, shift, d, lo, hi); }}};
#if defined(EAT_AVX512_VEC) && defined(EAT_AVX2_VEC)
  using cpu::scaled_exp_detail::Avx2;
  all.push_back({"avx2", 8,
                 [](const float* x, int64_t lo, int64_t hi, bool largest) {
                   return cpu::scaled_exp_detail::band_extreme_with<Avx2>(x, lo, hi, largest);
                 },
                 [](float* x, int64_t n, float scale, float shift, int64_t lo, int64_t hi) {
                   return cpu::scaled_exp_detail::scaled_exp_band_with<Avx2>(x, n, scale, shift, lo, hi);
                 },
                 [](float* p, float* g, int64_t n, float scale, float shift, float d, int64_t lo, int64_t hi) {
                   cpu::scaled_exp_detail::band_probabilities_with<Avx2>(p, g, n, scale, shift, d, lo, hi);
                 }});
#endif
  return all;
}

// Bands of a 64-wide row that start and end inside vectors, on vector edges, one element wide,
// and the whole row.
const std::vector<std::pair<int64_t, int64_t>> kBands = {{0, 64}, {0, 1}, {5, 6}, {3, 29}, {16, 32}, {17, 63}, {40, 64}};

std::vector<float> random_row(unsigned seed, float stddev) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> row(64);
  for (float& v : row) v = normal(gen);
  return row;
}

}  // namespace

TEST_CASE("band_extreme: the largest or smallest of a band, whatever lies outside it") {
  for (const BandKernels& k : band_kernels())
    for (const auto& [lo, hi] : kBands) {
      CAPTURE(k.name);
      CAPTURE(lo);
      CAPTURE(hi);
      std::vector<float> row = random_row(7, 3.0f);
      // Outside the band: values that would win if a masked lane leaked.
      for (int64_t i = 0; i < 64; ++i)
        if (i < lo || i >= hi) row[static_cast<size_t>(i)] = (i % 2) ? 1e30f : -1e30f;
      CHECK(k.extreme(row.data(), lo, hi, true) == *std::max_element(row.begin() + lo, row.begin() + hi));
      CHECK(k.extreme(row.data(), lo, hi, false) == *std::min_element(row.begin() + lo, row.begin() + hi));
    }
}

TEST_CASE("scaled_exp_band and band_probabilities: scaled_exp's bits inside the band, +0 outside, the sum to f32") {
  const float scale = 0.125f, shift = 3.0f, d = 0.7f;
  for (const BandKernels& k : band_kernels()) {
    if (k.lanes != Eigen::internal::packet_traits<float>::size) continue;  // scaled_exp is the widest's
    for (const auto& [lo, hi] : kBands) {
      CAPTURE(k.name);
      CAPTURE(lo);
      CAPTURE(hi);
      const std::vector<float> row = random_row(9, 20.0f), grad = random_row(11, 1.0f);
      std::vector<float> whole = row;
      cpu::scaled_exp(whole.data(), 64, scale, shift);

      std::vector<float> x = row;
      const float sum = k.exp_band(x.data(), 64, scale, shift, lo, hi);
      std::vector<float> p = row, g = grad;
      k.probabilities(p.data(), g.data(), 64, scale, shift, d, lo, hi);
      bool inside_same = true, outside_zero = true;
      double want_sum = 0;
      for (int64_t i = 0; i < 64; ++i) {
        const auto at = static_cast<size_t>(i);
        if (i >= lo && i < hi) {
          inside_same = inside_same && x[at] == whole[at] && p[at] == whole[at] && g[at] == whole[at] * (grad[at] - d);
          want_sum += static_cast<double>(whole[at]);
        } else {
          outside_zero = outside_zero && !std::signbit(x[at]) && x[at] == 0.0f && !std::signbit(p[at]) &&
                         p[at] == 0.0f && !std::signbit(g[at]) && g[at] == 0.0f;
        }
      }
      CHECK(inside_same);
      CHECK(outside_zero);
      CHECK(std::abs(sum - want_sum) <= 1e-6 * want_sum);  // 64 f32 terms: a few ulp
    }
  }
}

TEST_CASE("band functions in f64 are Eigen's over the band") {
  std::vector<double> x = {-3.0, -1.5, 0.0, 0.25, 2.0, -40.0, 7.0, 1e-3};
  CHECK(cpu::band_extreme(x.data(), 1, 6, true) == 2.0);
  CHECK(cpu::band_extreme(x.data(), 1, 6, false) == -40.0);
  std::vector<double> y = x;
  const double sum = cpu::scaled_exp_band(y.data(), 8, 0.5, 1.0, 2, 5);
  double want = 0;
  for (size_t i = 0; i < 8; ++i) {
    const bool in = i >= 2 && i < 5;
    if (in) {
      CHECK(std::abs(y[i] - std::exp(0.5 * x[i] - 1.0)) <= 1e-15 * std::exp(0.5 * x[i] - 1.0));
      want += y[i];
    } else {
      CHECK(y[i] == 0.0);
    }
  }
  CHECK(std::abs(sum - want) <= 1e-15 * want);
}
