// The sequence-parallel row movers on CUDA tensors (framework/parallel/time_rows.h) and the parts of
// the halo exchange a single process can run (a group of one), against the same calls on the CPU:
// copies must be exact (bit for bit), in f32 and bf16. Destinations hold sentinel rows or are
// allocated from NaN-poisoned blocks, so a row the device path skips fails the comparison.
#include <doctest/doctest.h>

#include <vector>

#include "framework/parallel/halo.h"
#include "framework/parallel/time_rows.h"
#include "gpu/gpu_compare.h"
#include "gpu/gpu_guard.h"
#include "runtime/cuda/stream.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("cuda time rows: copy_time and narrow_time move the same rows as on the CPU") {
  test::require_gpu();
  Generator gen(221);
  for (DType dtype : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    Tensor from = Tensor::randn({3, 9, 2, 5}, gen, 1.0).to(dtype);
    Tensor to = Tensor::full({3, 6, 2, 5}, -7.0, dtype);
    Tensor from_d = from.to(Device::cuda), to_d = to.to(Device::cuda);  // the same sentinel rows on both sides
    copy_time(from, 2, to, 1, 4);
    copy_time(from_d, 2, to_d, 1, 4);
    CHECK(to_d.to_f64_vector() == to.to_f64_vector());

    Tensor x = Tensor::randn({2, 11, 3}, gen, 1.0).to(dtype);
    poison_allocator_cache({{2, 4, 3}}, dtype);
    Tensor cut = narrow_time(x.to(Device::cuda), 5, 9);
    REQUIRE(cut.device() == Device::cuda);
    CHECK(cut.to_f64_vector() == narrow_time(x, 5, 9).to_f64_vector());
  }
}

TEST_CASE("cuda time rows: add_time sums on the device, bf16 included") {
  test::require_gpu();
  Generator gen(222);
  for (DType dtype : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    Tensor from = random_rounded({2, 3, 4}, gen, dtype), to = random_rounded({2, 8, 4}, gen, dtype);
    Tensor from_d = to_device(from, dtype), to_d = to_device(to, dtype);
    add_time(from, to, 4);  // f32 on the CPU: the exact sum of the rounded values, then one rounding on the device
    add_time(from_d, to_d, 4);
    cuda::sync_compute();
    // f32: the same single f32 addition; bf16: the device rounds the f32 sum once (< 2^-8 relative).
    const double tol = dtype == DType::bf16 ? 4e-3 : 1e-7;
    CHECK(rel_error(to_d, to) < tol);
    // Rows outside [4, 7) are untouched: compare them exactly with the inputs.
    Tensor head = narrow_time(to_d, 0, 4), tail = narrow_time(to_d, 7, 8);
    CHECK(head.to_f64_vector() == narrow_time(to, 0, 4).to_f64_vector());
    CHECK(tail.to_f64_vector() == narrow_time(to, 7, 8).to_f64_vector());
  }
}

TEST_CASE("cuda halo: in a group of one the halo is zeros and its gradient stays out of x's") {
  test::require_gpu();
  auto single = make_single_communicator();
  Generator gen(223);
  const int64_t B = 2, L = 5, C = 3;
  for (DType dtype : {DType::f32, DType::bf16})
    for (int64_t halo : {int64_t{0}, int64_t{3}, int64_t{12}}) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(halo);
      Tensor x = Tensor::randn({B, L, C}, gen, 1.0).to(dtype), seed = Tensor::randn({B, halo + L, C}, gen, 1.0).to(dtype);
      Tensor want = halo_exchange(x, halo, *single);  // the CPU path, checked index by index in tests/core
      Tensor want_grad = narrow_time(seed, halo, halo + L);
      poison_allocator_cache({{B, halo + L, C}, {B, L, C}}, dtype);
      Tensor xd = x.to(Device::cuda).requires_grad_();
      Tensor out = halo_exchange(xd, halo, *single);
      REQUIRE(out.device() == Device::cuda);
      CHECK(out.to_f64_vector() == want.to_f64_vector());
      out.backward(seed.to(Device::cuda));
      REQUIRE(xd.grad().defined());
      CHECK(xd.grad().to_f64_vector() == want_grad.to_f64_vector());
    }
}
