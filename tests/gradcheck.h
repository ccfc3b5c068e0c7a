#pragma once
// Test helpers shared by every kernel test:
//  - gradcheck: central finite differences in f64 against the analytic backward of any op;
//  - random inputs, relative errors, and an f32-vs-f64 comparison.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "framework/autograd.h"
#include "framework/ops.h"
#include "base/random.h"
#include "framework/tensor.h"
#include "rel_error.h"

namespace eat::test {

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double rtol = 1e-6;  // |analytic - numeric| <= atol + rtol * |numeric|
  double atol = 1e-8;
};

inline Tensor randn64(const Shape& shape, Generator& gen, double stddev = 1.0, bool grad = true) {
  Tensor t = Tensor::randn(shape, gen, stddev, DType::f64);
  if (grad) t.requires_grad_();
  return t;
}

// L(inputs) = sum(fn(inputs) * R) for a fixed random R: every output element gets its own weight,
// so a backward that mixes up output positions cannot pass.
inline double weighted_output(const OpFn& fn, const std::vector<Tensor>& inputs, const std::vector<double>& r) {
  NoGradGuard no_grad;
  std::vector<double> out = fn(inputs).to_f64_vector();
  REQUIRE(out.size() == r.size());
  double s = 0;
  for (size_t i = 0; i < out.size(); ++i) s += out[i] * r[i];
  return s;
}

// Checks d(sum(fn * R))/d(input) for every input that requires grad, element by element.
// Inputs must be f64 leaves. Returns the largest error seen, relative to the tolerance (<= 1 passes).
inline double gradcheck(const std::string& label, const OpFn& fn, std::vector<Tensor> inputs,
                        GradcheckOptions opt = {}) {
  for (Tensor& t : inputs) {
    REQUIRE(t.dtype() == DType::f64);
    t.zero_grad();
  }
  Tensor out = fn(inputs);
  REQUIRE(out.dtype() == DType::f64);
  Generator gen(12345);
  Tensor r = Tensor::randn(out.shape(), gen, 1.0, DType::f64);
  std::vector<double> rv = r.to_f64_vector();
  out.backward(r);

  double worst = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    std::vector<double> analytic = x.grad().defined() ? x.grad().to_f64_vector() : std::vector<double>(x.numel(), 0.0);
    double* p = x.data<double>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      double orig = p[i];
      p[i] = orig + opt.eps;
      double plus = weighted_output(fn, inputs, rv);
      p[i] = orig - opt.eps;
      double minus = weighted_output(fn, inputs, rv);
      p[i] = orig;
      double numeric = (plus - minus) / (2 * opt.eps);
      double err = std::abs(analytic[i] - numeric);
      double tol = opt.atol + opt.rtol * std::abs(numeric);
      worst = std::max(worst, err / tol);
      if (err > tol) {
        FAIL_CHECK(label << ": input " << k << " element " << i << " analytic " << analytic[i] << " numeric "
                         << numeric << " (err " << err << " > tol " << tol << ")");
        return worst;
      }
    }
  }
  return worst;
}

// Runs fn on f32 copies of f64 inputs and compares outputs and input gradients with the f64 run.
// Returns the largest relative error seen.
inline double f32_vs_f64(const OpFn& fn, const std::vector<Tensor>& inputs64) {
  std::vector<Tensor> a, b;
  for (const Tensor& t : inputs64) {
    Tensor d = t.detach().clone();
    Tensor f = t.dtype() == DType::f64 ? t.detach().to(DType::f32) : t.detach().clone();
    if (t.requires_grad()) {
      d.requires_grad_();
      f.requires_grad_();
    }
    a.push_back(d);
    b.push_back(f);
  }
  Tensor out64 = fn(a), out32 = fn(b);
  double worst = rel_error(out32, out64);
  Generator gen(777);
  Tensor seed = Tensor::randn(out64.shape(), gen, 1.0, DType::f64);
  out64.backward(seed);
  out32.backward(seed.to(DType::f32));
  for (size_t k = 0; k < a.size(); ++k)
    if (a[k].requires_grad()) worst = std::max(worst, rel_error(b[k].grad(), a[k].grad()));
  return worst;
}

}  // namespace eat::test
