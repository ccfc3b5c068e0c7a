// scaled_exp (kernels/cpu/scaled_exp.h), the exponentials of attention's score rows: against
// exp in f64 over the whole range a row meets, the underflow end, and the promise that a value's
// bits do not depend on where it lies in the row.
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
