// linear and matmul on CUDA tensors, forward and backward, against the same ops on the CPU.
// Device outputs and gradients start as NaN (poisoned allocator cache), so an unwritten element fails.
#include <doctest/doctest.h>

#include "framework/ops.h"
#include "base/random.h"
#include "gpu/gpu_compare.h"
#include "gpu/gpu_guard.h"

using namespace eat;

namespace {

Tensor leaf(const Tensor& t) {
  Tensor l = t.detach();
  l.requires_grad_();
  return l;
}

Tensor device_leaf(const Tensor& host, DType dt) {
  Tensor d = test::to_device(host, dt);
  d.requires_grad_();
  return d;
}

void check_close(const char* what, const Tensor& out, const Tensor& ref, DType dt) {
  CAPTURE(what);
  REQUIRE(out.defined());
  CHECK(out.device() == Device::cuda);
  CHECK(out.dtype() == dt);
  CHECK(test::rel_error(out, ref) < test::tolerance(dt));
}

}  // namespace

TEST_CASE("linear forward and backward on CUDA match the CPU, with and without bias") {
  test::require_gpu();
  Generator gen(21);
  const Shape x_shape{5, 13, 127}, w_shape{33, 127}, y_shape{5, 13, 33};  // 65 rows
  for (DType dt : {DType::f32, DType::bf16})
    for (bool with_bias : {false, true}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(with_bias);
      Tensor x = test::random_rounded(x_shape, gen, dt), w = test::random_rounded(w_shape, gen, dt);
      Tensor b = test::random_rounded({33}, gen, dt), dy = test::random_rounded(y_shape, gen, dt);
      Tensor xc = leaf(x), wc = leaf(w), bc = with_bias ? leaf(b) : Tensor();
      Tensor yc = linear(xc, wc, bc);
      yc.backward(dy);

      test::poison_allocator_cache({y_shape, x_shape, w_shape, {33}}, dt, 3);
      Tensor xd = device_leaf(x, dt), wd = device_leaf(w, dt), bd = with_bias ? device_leaf(b, dt) : Tensor();
      Tensor yd = linear(xd, wd, bd);
      yd.backward(test::to_device(dy, dt));
      check_close("y", yd, yc, dt);
      check_close("dx", xd.grad(), xc.grad(), dt);
      check_close("dw", wd.grad(), wc.grad(), dt);
      if (with_bias) check_close("db", bd.grad(), bc.grad(), dt);
    }
}

TEST_CASE("matmul forward and backward on CUDA match the CPU: transposes, batched and shared B") {
  test::require_gpu();
  Generator gen(22);
  const int64_t m = 65, k = 127, n = 33;
  const Shape batch{2, 3};
  auto with_batch = [&](Shape tail) {
    Shape s = batch;
    s.insert(s.end(), tail.begin(), tail.end());
    return s;
  };
  for (DType dt : {DType::f32, DType::bf16})
    for (int flags = 0; flags < 8; ++flags) {
      const bool ta = flags & 1, tb = flags & 2, shared_b = flags & 4;
      CAPTURE(dtype_name(dt));
      CAPTURE(flags);
      const Shape a_shape = with_batch(ta ? Shape{k, m} : Shape{m, k});
      const Shape b_tail = tb ? Shape{n, k} : Shape{k, n};
      const Shape b_shape = shared_b ? b_tail : with_batch(b_tail);
      const Shape c_shape = with_batch({m, n});
      Tensor a = test::random_rounded(a_shape, gen, dt), b = test::random_rounded(b_shape, gen, dt);
      Tensor dc = test::random_rounded(c_shape, gen, dt);
      Tensor ac = leaf(a), bc = leaf(b);
      Tensor cc = matmul(ac, bc, ta, tb);
      cc.backward(dc);

      test::poison_allocator_cache({a_shape, b_shape, c_shape}, dt, 3);
      Tensor ad = device_leaf(a, dt), bd = device_leaf(b, dt);
      Tensor cd = matmul(ad, bd, ta, tb);
      cd.backward(test::to_device(dc, dt));
      check_close("c", cd, cc, dt);
      check_close("da", ad.grad(), ac.grad(), dt);
      check_close("db", bd.grad(), bc.grad(), dt);
    }
}
