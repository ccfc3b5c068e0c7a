#pragma once
// Sequences of length T = 0 through decayed linear attention and its state ops, on either device:
// nothing is read or written per token, so the outputs are empty, the final state is the initial
// state (lambda^0 S0 = S0, exactly) or zero without one, and the gradients are the same identities
// (dS0 = dfinal, dstate of the readout = 0). Shared by the CPU suite (tests/kernels) and the GPU
// suite (tests/gpu), so both devices are held to the same contract.
#include <doctest/doctest.h>

#include <vector>

#include "base/random.h"
#include "framework/ops.h"

namespace eat::test {

// Random values rounded through dtype, on device, as a leaf that wants its gradient.
inline Tensor empty_sequence_input(const Shape& shape, Generator& gen, DType dtype, Device device) {
  Tensor t = Tensor::randn(shape, gen).to(dtype).to(device);
  t.requires_grad_();
  return t;
}

inline void check_values_equal(const Tensor& got, const Tensor& want, const char* what) {
  REQUIRE_MESSAGE(got.shape() == want.shape(), what, ": ", shape_str(got.shape()), " vs ", shape_str(want.shape()));
  CHECK_MESSAGE(got.to_f64_vector() == want.to_f64_vector(), what, ": values differ");
}

inline void check_all_zero(const Tensor& t, const char* what) {
  for (double v : t.to_f64_vector()) REQUIRE_MESSAGE(v == 0.0, what, ": ", v, " is not zero");
}

inline void check_empty_of(const Tensor& t, const Shape& shape, const char* what) {
  REQUIRE_MESSAGE(t.defined(), what, ": undefined");
  CHECK_MESSAGE(t.shape() == shape, what, ": ", shape_str(t.shape()), ", expected ", shape_str(shape));
}

inline void check_empty_sequence(Device device, DType dtype) {
  CAPTURE(dtype_name(dtype));
  const int64_t B = 2, H = 3, d = 16, e = 24;
  const Shape qk{B, 0, H, d}, vs{B, 0, H, e}, state{B, H, d, e};
  const std::vector<double> decay{0.9, 0.5, 1.0};
  Generator gen(2210);
  // Fresh leaves for each op, so no gradient carries over from the one before.
  struct Inputs {
    Tensor q, k, v, s0, dfinal;
  };
  auto inputs = [&] {
    return Inputs{empty_sequence_input(qk, gen, dtype, device), empty_sequence_input(qk, gen, dtype, device),
                  empty_sequence_input(vs, gen, dtype, device), empty_sequence_input(state, gen, dtype, device),
                  Tensor::randn(state, gen).to(dtype).to(device)};
  };
  {  // lightning_attention: empty output, final state = initial state, dS0 = dfinal
    Inputs in = inputs();
    auto [o, final_state] = lightning_attention(in.q, in.k, in.v, decay, in.s0);
    check_empty_of(o, vs, "lightning o");
    CHECK(o.device() == device);
    check_values_equal(final_state, in.s0, "lightning final state");
    final_state.backward(in.dfinal);
    check_values_equal(in.s0.grad(), in.dfinal, "lightning dS0");
    check_empty_of(in.q.grad(), qk, "lightning dq");
    check_empty_of(in.k.grad(), qk, "lightning dk");
    check_empty_of(in.v.grad(), vs, "lightning dv");
  }
  {  // lightning_attention without an initial state: a zero final state
    Inputs in = inputs();
    auto [o, final_state] = lightning_attention(in.q, in.k, in.v, decay);
    check_empty_of(o, vs, "lightning o (no S0)");
    CHECK(final_state.shape() == state);
    check_all_zero(final_state, "lightning final state (no S0)");
  }
  {  // decayed_state_sum: a zero state, empty gradients
    Inputs in = inputs();
    Tensor sum = decayed_state_sum(in.k, in.v, decay);
    CHECK(sum.shape() == state);
    check_all_zero(sum, "state sum");
    sum.backward(in.dfinal);
    check_empty_of(in.k.grad(), qk, "state sum dk");
    check_empty_of(in.v.grad(), vs, "state sum dv");
  }
  {  // decayed_state_readout: an empty output, a zero state gradient
    Inputs in = inputs();
    Tensor out = decayed_state_readout(in.q, in.s0, decay);
    check_empty_of(out, vs, "readout");
    out.backward(Tensor::zeros(vs, dtype, device));
    check_empty_of(in.q.grad(), qk, "readout dq");
    REQUIRE(in.s0.grad().defined());
    CHECK(in.s0.grad().shape() == state);
    check_all_zero(in.s0.grad(), "readout dstate");
  }
}

}  // namespace eat::test
