#pragma once
// Helpers for comparing a sequence-parallel op with the same op on the whole sequence: every rank
// builds the same whole inputs (same seed) and cuts out its own share.
#include "framework/tensor.h"

namespace eat::test {

// Rows [t0, t0 + L) of the time axis of x [B, T, ...], as a fresh tensor.
inline Tensor time_slice(const Tensor& x, int64_t t0, int64_t L) {
  const int64_t B = x.size(0), T = x.size(1), row = x.numel() / (B * T);
  auto v = x.to_f64_vector();
  std::vector<double> out;
  for (int64_t b = 0; b < B; ++b) out.insert(out.end(), v.begin() + (b * T + t0) * row, v.begin() + (b * T + t0 + L) * row);
  Shape s = x.shape();
  s[1] = L;
  return Tensor::from_vector<double>(out, s).to(x.dtype());
}

}  // namespace eat::test
