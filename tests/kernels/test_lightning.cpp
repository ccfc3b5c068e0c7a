// Decayed causal linear attention (Lightning Attention-2): the naive kernel against a loop-by-loop
// f64 definition; recurrent and chunked against naive (outputs, final state, every gradient);
// finite-difference gradients; f32 vs f64; chaining segments through the state; long-sequence
// stability of the chunked decays; determinism; bad inputs; the FLOP count.
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <span>

#include "base/error.h"
#include "gradcheck.h"
#include "kernels/cpu/lightning_chunked.h"
#include "kernels/cpu/lightning_flops.h"

using namespace eat;
using namespace eat::test;

namespace {

struct Inputs {
  Tensor q, k, v, s0;  // s0 undefined when there is no initial state
};

Inputs make_inputs(Generator& gen, const HeadShape& n, bool with_state) {
  Inputs in;
  in.q = randn64({n.B, n.T, n.H, n.d}, gen, 0.5, false);
  in.k = randn64({n.B, n.T, n.H, n.d}, gen, 0.5, false);
  in.v = randn64({n.B, n.T, n.H, n.e}, gen, 1.0, false);
  if (with_state) in.s0 = randn64({n.B, n.H, n.d, n.e}, gen, 1.0, false);
  return in;
}

// Fresh leaves (requiring grad) with the same values, in `dtype`.
Inputs leaves(const Inputs& in, DType dtype = DType::f64) {
  auto leaf = [&](const Tensor& t) { return t.defined() ? t.detach().to(dtype).requires_grad_() : Tensor(); };
  return {leaf(in.q), leaf(in.k), leaf(in.v), leaf(in.s0)};
}

LightningOptions opts(LightningImpl impl, int64_t block = 64) {
  LightningOptions o;
  o.impl = impl;
  o.block = block;
  return o;
}

// o[b,t,h] = sum_{s<=t} lambda^(t-s) (q_t . k_s) v_s + lambda^(t+1) q_t S0 and
// final[b,h] = sum_s lambda^(T-1-s) k_s^T v_s + lambda^T S0, by definition.
std::pair<std::vector<double>, std::vector<double>> reference(const Inputs& in, const std::vector<double>& decay) {
  const int64_t B = in.q.size(0), T = in.q.size(1), H = in.q.size(2), d = in.q.size(3), e = in.v.size(3);
  auto Q = in.q.to_f64_vector(), K = in.k.to_f64_vector(), V = in.v.to_f64_vector();
  std::vector<double> S0 = in.s0.defined() ? in.s0.to_f64_vector() : std::vector<double>(B * H * d * e, 0.0);
  std::vector<double> o(B * T * H * e, 0.0), fin(B * H * d * e, 0.0);
  auto qi = [&](int64_t b, int64_t t, int64_t h, int64_t i) { return Q[((b * T + t) * H + h) * d + i]; };
  auto ki = [&](int64_t b, int64_t t, int64_t h, int64_t i) { return K[((b * T + t) * H + h) * d + i]; };
  auto vj = [&](int64_t b, int64_t t, int64_t h, int64_t j) { return V[((b * T + t) * H + h) * e + j]; };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const double lam = decay[h];
      const double* s0 = &S0[(b * H + h) * d * e];
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < e; ++j) {
          double acc = 0;
          for (int64_t s = 0; s <= t; ++s) {
            double dot = 0;
            for (int64_t i = 0; i < d; ++i) dot += qi(b, t, h, i) * ki(b, s, h, i);
            acc += std::pow(lam, t - s) * dot * vj(b, s, h, j);
          }
          for (int64_t i = 0; i < d; ++i) acc += std::pow(lam, t + 1) * qi(b, t, h, i) * s0[i * e + j];
          o[((b * T + t) * H + h) * e + j] = acc;
        }
      for (int64_t i = 0; i < d; ++i)
        for (int64_t j = 0; j < e; ++j) {
          double acc = std::pow(lam, T) * s0[i * e + j];
          for (int64_t s = 0; s < T; ++s) acc += std::pow(lam, T - 1 - s) * ki(b, s, h, i) * vj(b, s, h, j);
          fin[(b * H + h) * d * e + i * e + j] = acc;
        }
    }
  return {o, fin};
}

// One run of the op with a backward pass through L = sum(o * r_o) + sum(final * r_f); an
// undefined weight leaves that output out of the loss (its gradient then arrives undefined).
struct Run {
  Tensor o, final_state, dq, dk, dv, ds0;
};

Run run(const Inputs& in, const std::vector<double>& decay, const LightningOptions& options, const Tensor& r_o,
        const Tensor& r_f) {
  auto [o, fin] = lightning_attention(in.q, in.k, in.v, decay, in.s0, options);
  if (r_o.defined() && r_f.defined()) add(sum(mul(o, r_o)), sum(mul(fin, r_f))).backward();
  else if (r_o.defined()) o.backward(r_o);
  else fin.backward(r_f);
  return {o.detach(), fin.detach(), in.q.grad(), in.k.grad(), in.v.grad(), in.s0.defined() ? in.s0.grad() : Tensor()};
}

// Outputs and every gradient of `got` against `want`, relative (||got - want|| / ||want||).
void check_close(const Run& got, const Run& want, double tol) {
  CHECK(rel_error(got.o, want.o) < tol);
  CHECK(rel_error(got.final_state, want.final_state) < tol);
  CHECK(rel_error(got.dq, want.dq) < tol);
  CHECK(rel_error(got.dk, want.dk) < tol);
  CHECK(rel_error(got.dv, want.dv) < tol);
  REQUIRE(got.ds0.defined() == want.ds0.defined());
  if (want.ds0.defined()) CHECK(rel_error(got.ds0, want.ds0) < tol);
}

bool all_finite(const Tensor& t) {
  for (double x : t.to_f64_vector())
    if (!std::isfinite(x)) return false;
  return true;
}

// Time steps [t0, t1) of a [1, T, H, w] tensor, as a differentiable view.
Tensor steps(const Tensor& x, int64_t t0, int64_t t1) {
  const int64_t T = x.size(1), H = x.size(2), w = x.size(3);
  return x.reshape({T, H, w}).slice_outer(t0, t1).reshape({1, t1 - t0, H, w});
}

const std::vector<LightningImpl> kAllImpls = {LightningImpl::naive, LightningImpl::recurrent,
                                                   LightningImpl::chunked};

}  // namespace

TEST_CASE("lightning: naive, recurrent and chunked forward against the definition (f64)") {
  Generator gen(1);
  struct Case {
    HeadShape n;
    std::vector<double> decay;
  };
  for (const Case& c : {Case{{1, 1, 1, 4, 4}, {0.9}}, Case{{2, 7, 3, 5, 6}, {1.0, 0.8, 0.05}},
                        Case{{1, 20, 2, 3, 2}, {0.6, 1.0}}, Case{{2, 33, 1, 2, 5}, {0.95}}})
    for (bool with_state : {false, true}) {
      CAPTURE(c.n.T);
      CAPTURE(with_state);
      Inputs in = make_inputs(gen, c.n, with_state);
      auto [want_o, want_f] = reference(in, c.decay);
      for (LightningImpl impl : kAllImpls) {
        CAPTURE(static_cast<int>(impl));
        auto [o, fin] = lightning_attention(in.q, in.k, in.v, c.decay, in.s0, opts(impl, 8));
        CHECK(rel_error(o.to_f64_vector(), want_o) < 1e-12);
        CHECK(rel_error(fin.to_f64_vector(), want_f) < 1e-12);
      }
    }
}

TEST_CASE("lightning: recurrent and chunked equal naive in f64, outputs, final state and every gradient") {
  // Block edges (T = 1, 7, 63, 64, 65, 130 against blocks 16 and 64), d != e, no decay, strong
  // decay and mixed per-head decays, with and without an initial state. Tolerance 1e-12 relative
  // (observed ~5e-16).
  Generator gen(2);
  const HeadShape base{2, 0, 3, 5, 3};
  for (int64_t T : {1, 7, 63, 64, 65, 130})
    for (const std::vector<double>& decay :
         {std::vector<double>{1, 1, 1}, std::vector<double>{0.05, 0.05, 0.05}, std::vector<double>{1.0, 0.9, 0.05}})
      for (bool with_state : {false, true}) {
        CAPTURE(T);
        CAPTURE(decay[1]);
        CAPTURE(with_state);
        HeadShape n = base;
        n.T = T;
        Inputs in = make_inputs(gen, n, with_state);
        Tensor r_o = randn64({n.B, n.T, n.H, n.e}, gen, 1.0, false), r_f = randn64({n.B, n.H, n.d, n.e}, gen, 1.0, false);
        Run want = run(leaves(in), decay, opts(LightningImpl::naive), r_o, r_f);
        check_close(run(leaves(in), decay, opts(LightningImpl::recurrent), r_o, r_f), want, 1e-12);
        for (int64_t block : {16, 64}) {
          CAPTURE(block);
          check_close(run(leaves(in), decay, opts(LightningImpl::chunked, block), r_o, r_f), want, 1e-12);
        }
      }
}

TEST_CASE("lightning: an output left out of the loss counts as a zero gradient") {
  Generator gen(3);
  const HeadShape n{2, 37, 2, 4, 3};
  const std::vector<double> decay{0.7, 1.0};
  Inputs in = make_inputs(gen, n, true);
  Tensor r_o = randn64({n.B, n.T, n.H, n.e}, gen, 1.0, false), r_f = randn64({n.B, n.H, n.d, n.e}, gen, 1.0, false);
  for (bool use_output : {true, false}) {
    CAPTURE(use_output);
    Tensor wo = use_output ? r_o : Tensor(), wf = use_output ? Tensor() : r_f;
    Run want = run(leaves(in), decay, opts(LightningImpl::naive), wo, wf);
    if (!use_output) {  // the final state does not depend on q
      for (double g : want.dq.to_f64_vector()) REQUIRE(g == 0.0);
      CHECK(rel_error(want.dk, Tensor::zeros_like(want.dk)) > 0);
    }
    check_close(run(leaves(in), decay, opts(LightningImpl::recurrent), wo, wf), want, 1e-12);
    check_close(run(leaves(in), decay, opts(LightningImpl::chunked, 16), wo, wf), want, 1e-12);
  }
}

TEST_CASE("lightning: finite-difference gradients of every implementation, both outputs, initial state") {
  Generator gen(4);
  struct Case {
    HeadShape n;
    int64_t block;
    std::vector<double> decay;
  };
  for (const Case& c : {Case{{2, 5, 2, 3, 2}, 2, {0.7, 1.0}}, Case{{1, 1, 1, 2, 3}, 4, {0.5}},
                        Case{{1, 7, 1, 3, 4}, 3, {0.05}}, Case{{1, 9, 2, 2, 2}, 4, {1.0, 0.3}}})
    for (bool with_state : {false, true})
      for (LightningImpl impl : kAllImpls) {
        CAPTURE(c.n.T);
        CAPTURE(with_state);
        CAPTURE(static_cast<int>(impl));
        Inputs in = leaves(make_inputs(gen, c.n, with_state));
        Tensor r_o = randn64({c.n.B, c.n.T, c.n.H, c.n.e}, gen, 1.0, false);
        Tensor r_f = randn64({c.n.B, c.n.H, c.n.d, c.n.e}, gen, 1.0, false);
        // One scalar weighing every element of both outputs, so the final-state path is checked too.
        OpFn fn = [&](const std::vector<Tensor>& x) {
          auto [o, fin] = lightning_attention(x[0], x[1], x[2], c.decay, x.size() > 3 ? x[3] : Tensor(),
                                              opts(impl, c.block));
          return add(sum(mul(o, r_o)), sum(mul(fin, r_f)));
        };
        std::vector<Tensor> x{in.q, in.k, in.v};
        if (with_state) x.push_back(in.s0);
        CHECK(gradcheck("lightning_attention", fn, x) <= 1.0);
      }
}

TEST_CASE("lightning: f32 against f64, chunked and recurrent") {
  // Tolerance 2e-6 relative (norm-wise) on outputs, final state and gradients (observed 1e-7 to
  // 2.5e-7): f32 rounding summed over up to 130 decayed terms. The second shape, d = 70 and e = 37,
  // takes the CPU kernel's register tiles past one tile of vectors and through partial last
  // vectors, in f32 and in f64 (there chunked against naive to 1e-12, as above).
  Generator gen(5);
  const std::vector<double> decay{1.0, 0.9, 0.05};
  for (const HeadShape& n : {HeadShape{2, 130, 3, 16, 8}, HeadShape{2, 80, 3, 70, 37}}) {
    CAPTURE(n.d);
    Inputs in = make_inputs(gen, n, true);
    Tensor r_o = randn64({n.B, n.T, n.H, n.e}, gen, 1.0, false), r_f = randn64({n.B, n.H, n.d, n.e}, gen, 1.0, false);
    Run want = run(leaves(in), decay, opts(LightningImpl::naive), r_o, r_f);
    check_close(run(leaves(in), decay, opts(LightningImpl::chunked, 64), r_o, r_f), want, 1e-12);
    for (auto [impl, block] : {std::pair{LightningImpl::chunked, int64_t{64}},
                               std::pair{LightningImpl::chunked, int64_t{16}},
                               std::pair{LightningImpl::recurrent, int64_t{64}}}) {
      CAPTURE(static_cast<int>(impl));
      CAPTURE(block);
      Run got = run(leaves(in, DType::f32), decay, opts(impl, block), r_o.to(DType::f32), r_f.to(DType::f32));
      CHECK(got.o.dtype() == DType::f32);
      check_close(got, want, 2e-6);
    }
  }
}

TEST_CASE("lightning: chaining segments through the state equals one run, forward and backward") {
  // Segments [0, 37), [37, 64), [64, 100): the final state of each is the next one's initial
  // state. Outputs, final state and every gradient (the state gradient flows back across
  // segments) match the single run to 1e-12 relative in f64.
  Generator gen(6);
  const HeadShape n{1, 100, 3, 4, 5};
  const std::vector<double> decay{1.0, 0.8, 0.05};
  const std::vector<int64_t> cuts{0, 37, 64, 100};
  Inputs in = make_inputs(gen, n, true);
  Tensor r_o = randn64({n.B, n.T, n.H, n.e}, gen, 1.0, false), r_f = randn64({n.B, n.H, n.d, n.e}, gen, 1.0, false);
  for (LightningImpl impl : kAllImpls) {
    CAPTURE(static_cast<int>(impl));
    Run whole = run(leaves(in), decay, opts(impl, 16), r_o, r_f);

    Inputs x = leaves(in);
    Tensor state = x.s0, loss;
    std::vector<Tensor> outs;
    for (size_t i = 0; i + 1 < cuts.size(); ++i) {
      auto [o, fin] = lightning_attention(steps(x.q, cuts[i], cuts[i + 1]), steps(x.k, cuts[i], cuts[i + 1]),
                                          steps(x.v, cuts[i], cuts[i + 1]), decay, state, opts(impl, 16));
      Tensor part = sum(mul(o, steps(r_o, cuts[i], cuts[i + 1])));
      loss = loss.defined() ? add(loss, part) : part;
      outs.push_back(o);
      state = fin;
    }
    add(loss, sum(mul(state, r_f))).backward();
    for (size_t i = 0; i < outs.size(); ++i)
      CHECK(rel_error(outs[i].detach(), steps(whole.o, cuts[i], cuts[i + 1])) < 1e-12);
    CHECK(rel_error(state.detach(), whole.final_state) < 1e-12);
    check_close({whole.o, whole.final_state, x.q.grad(), x.k.grad(), x.v.grad(), x.s0.grad()}, whole, 1e-12);
  }
}

TEST_CASE("lightning: decoding token by token with the recurrent kernel matches the chunked training kernel") {
  Generator gen(7);
  const HeadShape n{1, 45, 2, 6, 4};
  const std::vector<double> decay{0.9, 0.5};
  Inputs in = make_inputs(gen, n, false);
  auto [want_o, want_f] = lightning_attention(in.q, in.k, in.v, decay, Tensor(), opts(LightningImpl::chunked, 16));
  Tensor state;
  for (int64_t t = 0; t < n.T; ++t) {
    auto [o, fin] = lightning_attention(steps(in.q, t, t + 1), steps(in.k, t, t + 1), steps(in.v, t, t + 1), decay,
                                        state, opts(LightningImpl::recurrent));
    CHECK(rel_error(o, steps(want_o, t, t + 1)) < 1e-12);
    state = fin;
  }
  CHECK(rel_error(state, want_f) < 1e-12);
}

TEST_CASE("lightning: long sequence with strong decay and long blocks stays finite (f32)") {
  // T = 4096, block 256, lambda = 0.5: lambda^-255 would overflow f32, so a kernel that forms
  // inverse decay powers produces inf/NaN here. The chunked result must also match the recurrence.
  Generator gen(8);
  const HeadShape n{1, 4096, 2, 16, 16};
  for (const std::vector<double>& decay : {std::vector<double>{0.5, 0.5}, std::vector<double>{0.05, 1.0}}) {
    CAPTURE(decay[0]);
    Inputs in = make_inputs(gen, n, true);
    Tensor r_o = randn64({n.B, n.T, n.H, n.e}, gen, 1.0, false), r_f = randn64({n.B, n.H, n.d, n.e}, gen, 1.0, false);
    Run got = run(leaves(in, DType::f32), decay, opts(LightningImpl::chunked, 256), r_o.to(DType::f32),
                  r_f.to(DType::f32));
    for (const Tensor* t : {&got.o, &got.final_state, &got.dq, &got.dk, &got.dv, &got.ds0}) CHECK(all_finite(*t));
    Run want = run(leaves(in, DType::f32), decay, opts(LightningImpl::recurrent), r_o.to(DType::f32),
                   r_f.to(DType::f32));
    check_close(got, want, 1e-5);  // f32 against f32, sums of up to 4096 terms (observed ~1e-6)
  }
}

TEST_CASE("lightning: the chunked kernel is deterministic") {
  Generator gen(9);
  const HeadShape n{2, 300, 3, 32, 16};
  const std::vector<double> decay{0.99, 0.9, 0.5};
  Inputs in = make_inputs(gen, n, true);
  Tensor r_o = randn64({n.B, n.T, n.H, n.e}, gen, 1.0, false), r_f = randn64({n.B, n.H, n.d, n.e}, gen, 1.0, false);
  auto once = [&] {
    return run(leaves(in, DType::f32), decay, opts(LightningImpl::chunked, 64), r_o.to(DType::f32),
               r_f.to(DType::f32));
  };
  Run a = once(), b = once();
  for (auto [x, y] : {std::pair{&a.o, &b.o}, std::pair{&a.final_state, &b.final_state}, std::pair{&a.dq, &b.dq},
                      std::pair{&a.dk, &b.dk}, std::pair{&a.dv, &b.dv}, std::pair{&a.ds0, &b.ds0}})
    CHECK(x->to_f64_vector() == y->to_f64_vector());
}

namespace {

// Both schedules of the chunked kernel, called directly (the op picks one by head and thread
// count), with and without an initial state; also asking for only some gradients. Everything
// must be bit-identical.
template <typename T>
void check_schedules_agree(const HeadShape& s, const std::vector<double>& decay) {
  Generator gen(11);
  auto random = [&](const Shape& shape) {
    std::vector<T> out;
    for (double x : Tensor::randn(shape, gen, 0.5, DType::f64).to_f64_vector()) out.push_back(static_cast<T>(x));
    return out;
  };
  auto q = random({s.B, s.T, s.H, s.d}), k = random({s.B, s.T, s.H, s.d}), v = random({s.B, s.T, s.H, s.e});
  auto dout = random({s.B, s.T, s.H, s.e}), dfinal = random({s.B, s.H, s.d, s.e}), s0 = random({s.B, s.H, s.d, s.e});
  struct Result {
    std::vector<T> o, fin, dq, dk, dv, ds0;
  };
  const int64_t blocks = cpu::lightning_block_count(s.T, 16);
  // 64-byte aligned, as tensors are, so the kernel's streaming stores of the states are taken.
  const size_t saved_bytes = (static_cast<size_t>(s.B * s.H * blocks * s.d * s.e) * sizeof(T) + 63) / 64 * 64;
  std::unique_ptr<T[], decltype(&std::free)> saved_block(static_cast<T*>(std::aligned_alloc(64, saved_bytes)), &std::free);
  std::span<T> saved(saved_block.get(), static_cast<size_t>(s.B * s.H * blocks * s.d * s.e));
  // keep_states: the forward saves the state entering every block and the backward reuses them.
  auto run_kernels = [&](cpu::ChunkedSchedule schedule, const T* init, bool only_state_grads, bool keep_states = false) {
    Result r{std::vector<T>(dout.size()), std::vector<T>(s0.size()), std::vector<T>(q.size(), T(-1)),
             std::vector<T>(k.size(), T(-1)), std::vector<T>(v.size(), T(-1)), std::vector<T>(s0.size())};
    std::fill(saved.begin(), saved.end(), std::numeric_limits<T>::quiet_NaN());
    T* states = keep_states ? saved.data() : nullptr;
    cpu::lightning_chunked_forward<T>(s, 16, decay.data(), q.data(), k.data(), v.data(), init, r.o.data(), r.fin.data(),
                                      schedule, states);
    cpu::lightning_chunked_backward<T>(s, 16, decay.data(), q.data(), k.data(), v.data(), init, dout.data(),
                                       dfinal.data(), only_state_grads ? nullptr : r.dq.data(),
                                       only_state_grads ? nullptr : r.dk.data(), r.dv.data(), r.ds0.data(), schedule,
                                       states);
    return r;
  };
  for (const T* init : {static_cast<const T*>(nullptr), static_cast<const T*>(s0.data())}) {
    CAPTURE(init != nullptr);
    Result a = run_kernels(cpu::ChunkedSchedule::per_head, init, false);
    Result b = run_kernels(cpu::ChunkedSchedule::per_block, init, false);
    CHECK(a.o == b.o);
    CHECK(a.fin == b.fin);
    CHECK(a.dq == b.dq);
    CHECK(a.dk == b.dk);
    CHECK(a.dv == b.dv);
    CHECK(a.ds0 == b.ds0);
    for (cpu::ChunkedSchedule schedule : {cpu::ChunkedSchedule::per_head, cpu::ChunkedSchedule::per_block}) {
      Result c = run_kernels(schedule, init, true);
      CHECK(c.dv == a.dv);
      CHECK(c.ds0 == a.ds0);
      CHECK(c.dq == std::vector<T>(q.size(), T(-1)));  // not asked for: untouched
    }
    // Reusing the forward's block states changes no bit, on either schedule, and the saved
    // state entering block j is the final state of the first j blocks run alone.
    for (cpu::ChunkedSchedule schedule : {cpu::ChunkedSchedule::per_head, cpu::ChunkedSchedule::per_block}) {
      for (bool only_state_grads : {false, true}) {
        Result c = run_kernels(schedule, init, only_state_grads, true);
        CHECK(c.o == a.o);
        CHECK(c.fin == a.fin);
        if (!only_state_grads) {
          CHECK(c.dq == a.dq);
          CHECK(c.dk == a.dk);
        }
        CHECK(c.dv == a.dv);
        CHECK(c.ds0 == a.ds0);
      }
      for (int64_t j : {int64_t{0}, int64_t{3}, blocks - 1}) {
        const HeadShape prefix{s.B, j * 16, s.H, s.d, s.e};
        std::vector<T> o_prefix(static_cast<size_t>(s.B * prefix.T * s.H * s.e)), fin(s0.size());
        // The first j blocks as their own [B, 16 j, H, *] tensors (rows of a batch are contiguous in time).
        auto rows = [&](const std::vector<T>& x, int64_t w) {
          std::vector<T> out;
          for (int64_t b = 0; b < s.B; ++b)
            out.insert(out.end(), x.begin() + b * s.T * s.H * w, x.begin() + (b * s.T + prefix.T) * s.H * w);
          return out;
        };
        auto qp = rows(q, s.d), kp = rows(k, s.d), vp = rows(v, s.e);
        if (j == 0) fin = init ? s0 : std::vector<T>(s0.size(), T(0));
        else cpu::lightning_chunked_forward<T>(prefix, 16, decay.data(), qp.data(), kp.data(), vp.data(), init,
                                               o_prefix.data(), fin.data(), schedule);
        for (int64_t bh = 0; bh < s.B * s.H; ++bh) {
          const T* got = saved.data() + (bh * blocks + j) * s.d * s.e;
          CHECK(std::vector<T>(got, got + s.d * s.e) == std::vector<T>(fin.begin() + bh * s.d * s.e, fin.begin() + (bh + 1) * s.d * s.e));
        }
      }
    }
  }
}

}  // namespace

TEST_CASE("lightning: the per-head and per-block schedules of the chunked kernel agree bit for bit") {
  // Small odd widths, then the model's d = e = 64 with more heads than one sweep group holds
  // (the per-head sweep walks groups of heads whose states fit in L2) and states a whole number
  // of vectors long (the saved states go out through streaming stores).
  SUBCASE("odd widths") {
    check_schedules_agree<double>({2, 130, 3, 5, 3}, {1.0, 0.9, 0.05});
    check_schedules_agree<float>({2, 130, 3, 5, 3}, {1.0, 0.9, 0.05});
  }
  SUBCASE("d = e = 64, groups of heads") {
    check_schedules_agree<double>({1, 130, 5, 64, 64}, {1.0, 0.99, 0.9, 0.5, 0.05});
    check_schedules_agree<float>({1, 130, 5, 64, 64}, {1.0, 0.99, 0.9, 0.5, 0.05});
  }
}

TEST_CASE("lightning: bad inputs are rejected with the shapes in the message") {
  Generator gen(10);
  Inputs in = make_inputs(gen, {2, 5, 3, 4, 2}, false);
  const std::vector<double> decay{0.9, 0.9, 0.9};
  CHECK_THROWS_WITH_AS(lightning_attention(in.q, in.k, in.v, {0.9, 0.9}),
                       doctest::Contains("2 decay values for 3 heads"), eat::Error);
  for (double bad : {0.0, -0.5, 1.5, std::nan("")})
    CHECK_THROWS_WITH_AS(lightning_attention(in.q, in.k, in.v, {0.9, bad, 0.9}),
                         doctest::Contains("lambda must lie in (0, 1]"), eat::Error);
  Tensor bad_state = Tensor::zeros({2, 3, 2, 4}, DType::f64);  // d and e swapped
  CHECK_THROWS_WITH_AS(lightning_attention(in.q, in.k, in.v, decay, bad_state),
                       doctest::Contains("initial_state [2, 3, 2, 4] must be [B, H, d, e] = [2, 3, 4, 2]"),
                       eat::Error);
  CHECK_THROWS_WITH_AS(lightning_attention(in.q, in.k, in.v, decay, Tensor::zeros({2, 3, 4, 2}, DType::f32)),
                       doctest::Contains("lightning_attention"), eat::Error);
  CHECK_THROWS_WITH_AS(lightning_attention(in.q, in.k, in.v, decay, Tensor(), opts(LightningImpl::chunked, 0)),
                       doctest::Contains("block must be >= 1"), eat::Error);
  CHECK_THROWS_WITH_AS(lightning_attention(in.q, randn64({2, 5, 3, 3}, gen, 1.0, false), in.v, decay),
                       doctest::Contains("must have the same shape"), eat::Error);
  CHECK_THROWS_WITH_AS(lightning_attention(in.q, in.k, randn64({2, 6, 3, 2}, gen, 1.0, false), decay),
                       doctest::Contains("in batch, time and heads"), eat::Error);
}

TEST_CASE("lightning: FLOP count of the chunked kernel") {
  // One block of 4 tokens, d = 2, e = 3: state 2*4*2*3 = 48, 10 causal pairs * 2 * (2 + 3) = 100.
  CHECK(cpu::lightning_flops(1, 4, 1, 2, 3, 4, false) == 148);
  // A second block adds its own 148 plus the inter-block product Q S_in (48).
  CHECK(cpu::lightning_flops(1, 8, 1, 2, 3, 4, false) == 344);
  // Backward of one block: 3 state products (144) + 10 pairs * 2 * (3*2 + 2*3) (240).
  CHECK(cpu::lightning_flops(1, 4, 1, 2, 3, 4, true) == 148 + 384);
  // A partial last block of 1 token: state 12, 1 pair * 10, inter 12.
  CHECK(cpu::lightning_flops(1, 5, 1, 2, 3, 4, false) == 148 + 12 + 10 + 12);
  CHECK(cpu::lightning_flops(3, 8, 5, 2, 3, 4, true) == 15 * cpu::lightning_flops(1, 8, 1, 2, 3, 4, true));
}
