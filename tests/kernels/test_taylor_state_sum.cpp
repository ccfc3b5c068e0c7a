// taylor_state_sum: the state a segment of Taylor linear attention leaves from a zero start equals
// taylor_attention's final state, and so do its gradients (f64, every form as the reference);
// finite-difference gradients; bad inputs.
#include "base/error.h"
#include "gradcheck.h"
#include "kernels/head_shape.h"

using namespace eat;
using namespace eat::test;

namespace {

Shape state_shape(const HeadShape& n) { return {n.B, n.H, taylor_state_rows(n.d), n.e + 1}; }

struct Grads {
  Tensor state, dk, dv;
};

// The state and the gradients of sum(state * r) through `state_of(k, v)`.
template <typename F>
Grads run(const Tensor& k0, const Tensor& v0, const Tensor& r, F state_of) {
  Tensor k = k0.detach().requires_grad_(), v = v0.detach().requires_grad_();
  Tensor state = state_of(k, v);
  state.backward(r);
  return {state.detach(), k.grad(), v.grad()};
}

}  // namespace

TEST_CASE("taylor_state_sum: equals taylor_attention's final state and its gradients (f64, every form)") {
  // Block edges (T = 1, 7, 64, 65, 130 against block 16 and 64), f = 4 and BASED's 16, e != f.
  // Tolerance 1e-12 relative (norm-wise): the same sums in another order.
  Generator gen(1);
  for (int64_t T : {1, 7, 64, 65, 130})
    for (int64_t f : {4, 16}) {
      CAPTURE(T);
      CAPTURE(f);
      const HeadShape n{2, T, 3, f, 5};
      Tensor q = randn64(n.qk(), gen, 0.7, false), k = randn64(n.qk(), gen, 0.7, false);
      Tensor v = randn64(n.v(), gen, 1.0, false), r = randn64(state_shape(n), gen, 1.0, false);
      Grads got = run(k, v, r, [](const Tensor& k, const Tensor& v) { return taylor_state_sum(k, v); });
      REQUIRE(got.state.shape() == state_shape(n));
      for (TaylorImpl impl : {TaylorImpl::parallel, TaylorImpl::chunked, TaylorImpl::recurrent})
        for (bool normalize : {true, false}) {
          CAPTURE(static_cast<int>(impl));
          CAPTURE(normalize);
          TaylorOptions o;
          o.impl = impl;
          o.block = 16;
          o.normalize = normalize;
          Grads want = run(k, v, r, [&](const Tensor& k, const Tensor& v) {
            return taylor_attention(q, k, v, Tensor(), o).second;
          });
          CHECK(rel_error(got.state, want.state) < 1e-12);
          CHECK(rel_error(got.dk, want.dk) < 1e-12);
          CHECK(rel_error(got.dv, want.dv) < 1e-12);
        }
    }
}

TEST_CASE("taylor_state_sum: finite-difference gradients of k and v") {
  Generator gen(2);
  for (const HeadShape& n : {HeadShape{2, 5, 2, 3, 2}, HeadShape{1, 1, 1, 2, 3}, HeadShape{1, 9, 1, 4, 2}}) {
    CAPTURE(n.T);
    Tensor k = randn64(n.qk(), gen, 0.7), v = randn64(n.v(), gen);
    // Weights small enough that the loss stays O(1) (its rounding over the step stays small).
    Tensor r = randn64(state_shape(n), gen, 0.1, false);
    OpFn fn = [&](const std::vector<Tensor>& x) { return sum(mul(taylor_state_sum(x[0], x[1]), r)); };
    CHECK(gradcheck("taylor_state_sum", fn, {k, v}) <= 1.0);
  }
}

TEST_CASE("taylor_state_sum: f32 against f64") {
  // Tolerance 2e-6 relative (norm-wise) at f = 16, T = 130: f32 sums of 130 feature products.
  Generator gen(3);
  const HeadShape n{2, 130, 2, 16, 8};
  Tensor k = randn64(n.qk(), gen, 0.7, false), v = randn64(n.v(), gen, 1.0, false);
  Tensor r = randn64(state_shape(n), gen, 1.0, false);
  auto sum_of = [](const Tensor& k, const Tensor& v) { return taylor_state_sum(k, v); };
  Grads want = run(k, v, r, sum_of);
  Grads got = run(k.to(DType::f32), v.to(DType::f32), r.to(DType::f32), sum_of);
  CHECK(got.state.dtype() == DType::f32);
  CHECK(rel_error(got.state.to(DType::f64), want.state) < 2e-6);
  CHECK(rel_error(got.dk.to(DType::f64), want.dk) < 2e-6);
  CHECK(rel_error(got.dv.to(DType::f64), want.dv) < 2e-6);
}

TEST_CASE("taylor_state_sum: bad inputs name the tensor and the expected shape") {
  Generator gen(4);
  CHECK_THROWS_WITH_AS(taylor_state_sum(randn64({1, 3, 2}, gen), randn64({1, 3, 2, 4}, gen)),
                       doctest::Contains("taylor_state_sum: k [B, T, H, d]"), Error);
  CHECK_THROWS_WITH_AS(taylor_state_sum(randn64({1, 3, 2, 4}, gen), randn64({1, 4, 2, 4}, gen)),
                       doctest::Contains("must share B, T, H with k"), Error);
}
