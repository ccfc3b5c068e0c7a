// Device casts and fills against the CPU conversion, element for element (they must round alike).
#include <doctest/doctest.h>

#include <cmath>

#include "base/random.h"
#include "framework/tensor.h"
#include "gpu/gpu_compare.h"
#include "gpu/gpu_guard.h"

using namespace eat;

namespace {

const DType kAll[] = {DType::f32, DType::f64, DType::bf16, DType::i32, DType::i64};

// Random values with fractions (so integer casts truncate and bf16 rounds), some large.
Tensor sample(int64_t n, DType dtype, uint64_t seed) {
  Generator gen(seed);
  return Tensor::randn({n}, gen, 300.0, DType::f64).to(dtype);
}

// Element-wise equality; NaN never occurs in these inputs.
void check_equal(const Tensor& out, const Tensor& ref) {
  REQUIRE(out.dtype() == ref.dtype());
  std::vector<double> o = out.to_f64_vector(), r = ref.to_f64_vector();
  REQUIRE(o.size() == r.size());
  size_t bad = 0;
  for (size_t i = 0; i < o.size(); ++i) bad += o[i] != r[i];
  CHECK_MESSAGE(bad == 0, bad, " of ", o.size(), " elements differ, ", out.describe());
}

}  // namespace

TEST_CASE("Tensor::to(DType) on the device rounds like the CPU for every pair of dtypes") {
  test::require_gpu();
  for (DType from : kAll)
    for (DType to : kAll) {
      CAPTURE(dtype_name(from));
      CAPTURE(dtype_name(to));
      Tensor host = sample(1001, from, 7);
      check_equal(host.to(Device::cuda).to(to), host.to(to));
    }
}

TEST_CASE("copy_from with a dtype change between device tensors writes every element") {
  test::require_gpu();
  for (DType to : {DType::f32, DType::bf16, DType::f64}) {
    Tensor host = sample(777, DType::f32, 11);
    Tensor dst = test::poisoned_device({777}, to);
    dst.copy_from(host.to(Device::cuda));
    check_equal(dst, host.to(to));
  }
}

TEST_CASE("a cast longer than one grid covers every element") {
  test::require_gpu();
  const int64_t n = int64_t{65535} * 256 + 1001;  // more than grid_for's block cap times 256
  Tensor host = sample(n, DType::f32, 3);
  Tensor out = host.to(Device::cuda).to(DType::bf16);
  check_equal(out, host.to(DType::bf16));
}

TEST_CASE("fill_ on the device stores the CPU's bits for every dtype, only inside a view") {
  test::require_gpu();
  for (DType dt : kAll) {
    CAPTURE(dtype_name(dt));
    Tensor dev = Tensor::zeros({4, 257}, dt, Device::cuda);
    dev.slice_outer(1, 3).fill_(0.1);  // 0.1 is inexact in every float type: rounding must agree
    Tensor ref = Tensor::zeros({4, 257}, dt);
    ref.slice_outer(1, 3).fill_(0.1);
    check_equal(dev, ref);
  }
  Tensor big = test::poisoned_device({int64_t{65535} * 256 + 3}, DType::f32);
  big.fill_(-1.5);
  for (double v : big.to_f64_vector())
    if (v != -1.5) FAIL("an element of a long fill was not written: ", v);
}

TEST_CASE("zero_ and zeros on the device, ordered with the kernels around them") {
  test::require_gpu();
  Tensor t = test::poisoned_device({3, 333}, DType::bf16);
  t.zero_();
  t.slice_outer(2, 3).fill_(4.0);
  std::vector<double> v = t.to_f64_vector();
  for (size_t i = 0; i < v.size(); ++i) CHECK(v[i] == (i >= 2 * 333 ? 4.0 : 0.0));
}
