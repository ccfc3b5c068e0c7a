// Taylor linear attention (BASED): every form against a loop-by-loop f64 definition (the feature
// map written out, the initial state entering numerator and normaliser); the forms against each
// other (outputs, final state, every gradient); finite-difference gradients of both outputs and
// the initial state; f32 against f64; chaining segments through the state; bad inputs.
#include <cmath>

#include "base/error.h"
#include "gradcheck.h"
#include "kernels/cpu/taylor_chunked.h"
#include "kernels/taylor_attention.h"

using namespace eat;
using namespace eat::test;

namespace {

struct Inputs {
  Tensor q, k, v, s0;  // s0 undefined when there is no initial state
};

Shape state_shape(const HeadShape& n) { return {n.B, n.H, taylor_state_rows(n.d), n.e + 1}; }

// The initial state is a sum of features of earlier keys (the normaliser column then stays
// positive, as in real use): `prefix` random tokens, times [v, 1].
Inputs make_inputs(Generator& gen, const HeadShape& n, bool with_state, int64_t prefix = 5);

Inputs leaves(const Inputs& in, DType dtype = DType::f64) {
  auto leaf = [&](const Tensor& t) { return t.defined() ? t.detach().to(dtype).requires_grad_() : Tensor(); };
  return {leaf(in.q), leaf(in.k), leaf(in.v), leaf(in.s0)};
}

TaylorOptions opts(TaylorImpl impl, bool normalize, int64_t block = 8) {
  TaylorOptions o;
  o.impl = impl;
  o.block = block;
  o.normalize = normalize;
  return o;
}

// phi(x) by the documented packing: [1, x / f^(1/4), x_a x_b c_ab / sqrt(f) (a <= b)].
std::vector<double> phi(const double* x, int64_t f) {
  std::vector<double> out{1.0};
  for (int64_t a = 0; a < f; ++a) out.push_back(x[a] / std::pow(double(f), 0.25));
  for (int64_t a = 0; a < f; ++a)
    for (int64_t b = a; b < f; ++b) out.push_back(x[a] * x[b] * (a == b ? 1 / std::sqrt(2.0) : 1.0) / std::sqrt(double(f)));
  return out;
}

// y and the final state by definition: A_ij = 1 + s + s^2 / 2 summed directly, the prefix
// through phi(q_i) [S | z]_in, final = in + sum_j phi(k_j)^T [v_j, 1].
std::pair<std::vector<double>, std::vector<double>> reference(const Inputs& in, bool normalize, double eps) {
  const int64_t B = in.q.size(0), T = in.q.size(1), H = in.q.size(2), f = in.q.size(3), e = in.v.size(3);
  const int64_t D = taylor_state_rows(f), E = e + 1;
  auto Q = in.q.to_f64_vector(), K = in.k.to_f64_vector(), V = in.v.to_f64_vector();
  std::vector<double> S0 = in.s0.defined() ? in.s0.to_f64_vector() : std::vector<double>(B * H * D * E, 0.0);
  std::vector<double> y(B * T * H * e), fin = S0;
  auto at = [&](const std::vector<double>& x, int64_t b, int64_t t, int64_t h, int64_t w) {
    return &x[((b * T + t) * H + h) * w];
  };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const double* s0 = &S0[(b * H + h) * D * E];
      for (int64_t i = 0; i < T; ++i) {
        const std::vector<double> pq = phi(at(Q, b, i, h, f), f);
        std::vector<double> acc(E, 0.0);
        for (int64_t r = 0; r < D; ++r)
          for (int64_t c = 0; c < E; ++c) acc[c] += pq[r] * s0[r * E + c];
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (int64_t a = 0; a < f; ++a) dot += at(Q, b, i, h, f)[a] * at(K, b, j, h, f)[a];
          const double s = dot / std::sqrt(double(f)), A = 1 + s + s * s / 2;
          const std::vector<double> pk = phi(at(K, b, j, h, f), f);
          double packed = 0;  // the packing reproduces the kernel exactly
          for (int64_t r = 0; r < D; ++r) packed += pq[r] * pk[r];
          REQUIRE(std::abs(packed - A) <= 1e-12 * A);
          for (int64_t c = 0; c < e; ++c) acc[c] += A * at(V, b, j, h, e)[c];
          acc[e] += A;
        }
        for (int64_t c = 0; c < e; ++c) y[((b * T + i) * H + h) * e + c] = normalize ? acc[c] / (acc[e] + eps) : acc[c];
      }
      double* fo = &fin[(b * H + h) * D * E];
      for (int64_t j = 0; j < T; ++j) {
        const std::vector<double> pk = phi(at(K, b, j, h, f), f);
        for (int64_t r = 0; r < D; ++r) {
          for (int64_t c = 0; c < e; ++c) fo[r * E + c] += pk[r] * at(V, b, j, h, e)[c];
          fo[r * E + e] += pk[r];
        }
      }
    }
  return {y, fin};
}

Inputs make_inputs(Generator& gen, const HeadShape& n, bool with_state, int64_t prefix) {
  Inputs in;
  in.q = randn64({n.B, n.T, n.H, n.d}, gen, 0.7, false);
  in.k = randn64({n.B, n.T, n.H, n.d}, gen, 0.7, false);
  in.v = randn64({n.B, n.T, n.H, n.e}, gen, 1.0, false);
  if (with_state) {
    Inputs earlier;
    earlier.q = randn64({n.B, prefix, n.H, n.d}, gen, 0.7, false);
    earlier.k = randn64({n.B, prefix, n.H, n.d}, gen, 0.7, false);
    earlier.v = randn64({n.B, prefix, n.H, n.e}, gen, 1.0, false);
    in.s0 = Tensor::from_vector<double>(reference(earlier, true, 0.0).second, state_shape(n));
  }
  return in;
}

// One run with a backward pass through L = sum(y * r_y) + sum(final * r_f).
struct Run {
  Tensor y, final_state, dq, dk, dv, ds0;
};

Run run(const Inputs& in, const TaylorOptions& options, const Tensor& r_y, const Tensor& r_f) {
  auto [y, fin] = taylor_attention(in.q, in.k, in.v, in.s0, options);
  add(sum(mul(y, r_y)), sum(mul(fin, r_f))).backward();
  return {y.detach(), fin.detach(), in.q.grad(), in.k.grad(), in.v.grad(), in.s0.defined() ? in.s0.grad() : Tensor()};
}

// Relative (norm-wise) difference; against an exactly cancelling reference (a single normalised
// token without a prefix has y = v and dq = dk = 0 up to rounding) the difference in norm itself.
double difference(const Tensor& got, const Tensor& want) {
  const std::vector<double> w = want.to_f64_vector(), g = got.to_f64_vector();
  double norm = 0, diff = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    norm += w[i] * w[i];
    diff += (g[i] - w[i]) * (g[i] - w[i]);
  }
  return norm > 1e-20 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

// The largest difference over outputs, final state and every gradient.
double worst_error(const Run& got, const Run& want) {
  double worst = 0;
  for (auto [a, b] : {std::pair{&got.y, &want.y}, std::pair{&got.final_state, &want.final_state},
                      std::pair{&got.dq, &want.dq}, std::pair{&got.dk, &want.dk}, std::pair{&got.dv, &want.dv}})
    worst = std::max(worst, difference(*a, *b));
  REQUIRE(got.ds0.defined() == want.ds0.defined());
  if (want.ds0.defined()) worst = std::max(worst, difference(got.ds0, want.ds0));
  return worst;
}

const std::vector<TaylorImpl> kAllImpls = {TaylorImpl::parallel, TaylorImpl::chunked, TaylorImpl::recurrent};

// Shapes: one token, one head, batch 1, T not a multiple of the block, f != 16, d != e, and
// BASED's own f = 16.
const std::vector<HeadShape> kShapes = {{1, 1, 1, 4, 4}, {2, 7, 3, 4, 6}, {1, 20, 2, 3, 2}, {2, 19, 1, 16, 5}};

}  // namespace

TEST_CASE("taylor: the feature dimension") {
  CHECK(taylor_state_rows(16) == 153);
  CHECK(taylor_state_rows(4) == 15);
  CHECK(taylor_state_rows(1) == 3);
}

TEST_CASE("taylor: every form against the definition, both variants, with and without an initial state (f64)") {
  // Tolerance 1e-12 relative (observed ~1e-16).
  Generator gen(1);
  for (const HeadShape& n : kShapes)
    for (bool with_state : {false, true})
      for (bool normalize : {true, false}) {
        CAPTURE(n.T);
        CAPTURE(n.d);
        CAPTURE(with_state);
        CAPTURE(normalize);
        Inputs in = make_inputs(gen, n, with_state);
        auto [want_y, want_f] = reference(in, normalize, 1e-12);
        for (TaylorImpl impl : kAllImpls) {
          CAPTURE(static_cast<int>(impl));
          auto [y, fin] = taylor_attention(in.q, in.k, in.v, in.s0, opts(impl, normalize));
          CHECK(rel_error(y.to_f64_vector(), want_y) < 1e-12);
          CHECK(rel_error(fin.to_f64_vector(), want_f) < 1e-12);
        }
      }
}

TEST_CASE("taylor: finite-difference gradients of every form, both outputs and the initial state") {
  Generator gen(2);
  struct Case {
    HeadShape n;
    int64_t block;
  };
  for (const Case& c : {Case{{2, 5, 2, 3, 2}, 2}, Case{{1, 1, 1, 2, 3}, 4}, Case{{1, 7, 1, 4, 2}, 3}})
    for (bool with_state : {false, true})
      for (bool normalize : {true, false})
        for (TaylorImpl impl : kAllImpls) {
          CAPTURE(c.n.T);
          CAPTURE(with_state);
          CAPTURE(normalize);
          CAPTURE(static_cast<int>(impl));
          Inputs in = leaves(make_inputs(gen, c.n, with_state, 2));
          // Weights small enough that the loss stays O(1): its rounding, divided by the step, is
          // then well below the tolerance.
          Tensor r_y = randn64(c.n.v(), gen, 0.5, false), r_f = randn64(state_shape(c.n), gen, 0.1, false);
          OpFn fn = [&](const std::vector<Tensor>& x) {
            auto [y, fin] = taylor_attention(x[0], x[1], x[2], x.size() > 3 ? x[3] : Tensor(), opts(impl, normalize, c.block));
            return add(sum(mul(y, r_y)), sum(mul(fin, r_f)));
          };
          std::vector<Tensor> x{in.q, in.k, in.v};
          if (with_state) x.push_back(in.s0);
          CHECK(gradcheck("taylor_attention", fn, x) <= 1.0);
        }
}

TEST_CASE("taylor: the three forms agree in f64, outputs, final state and every gradient") {
  // Block edges (T = 1, 7, 63, 64, 65, 130 against blocks 16 and 64), f != 16 and f = 16, d != e,
  // both variants, with and without an initial state. Tolerance 1e-12 relative (norm-wise).
  Generator gen(3);
  double worst = 0;
  for (int64_t T : {1, 7, 63, 64, 65, 130})
    for (int64_t f : {4, 16})
      for (bool with_state : {false, true})
        for (bool normalize : {true, false}) {
          CAPTURE(T);
          CAPTURE(f);
          CAPTURE(with_state);
          CAPTURE(normalize);
          const HeadShape n{2, T, 2, f, 3};
          Inputs in = make_inputs(gen, n, with_state);
          Tensor r_y = randn64(n.v(), gen, 1.0, false), r_f = randn64(state_shape(n), gen, 1.0, false);
          Run want = run(leaves(in), opts(TaylorImpl::recurrent, normalize), r_y, r_f);
          for (int64_t block : {16, 64})
            for (TaylorImpl impl : {TaylorImpl::parallel, TaylorImpl::chunked}) {
              CAPTURE(block);
              CAPTURE(static_cast<int>(impl));
              const double err = worst_error(run(leaves(in), opts(impl, normalize, block), r_y, r_f), want);
              CHECK(err < 1e-12);
              worst = std::max(worst, err);
            }
        }
  MESSAGE("taylor forms, worst relative difference in f64: " << worst);
}

TEST_CASE("taylor: an output left out of the loss counts as a zero gradient") {
  // Only the final state in the loss: it does not depend on q, so dq is exactly zero, and the
  // other gradients still match across the forms.
  Generator gen(4);
  const HeadShape n{2, 37, 2, 4, 3};
  Inputs in = make_inputs(gen, n, true);
  Tensor r_f = randn64(state_shape(n), gen, 1.0, false);
  auto final_only = [&](TaylorImpl impl) {
    Inputs x = leaves(in);
    taylor_attention(x.q, x.k, x.v, x.s0, opts(impl, true, 16)).second.backward(r_f);
    return Run{Tensor(), Tensor(), x.q.grad(), x.k.grad(), x.v.grad(), x.s0.grad()};
  };
  Run want = final_only(TaylorImpl::recurrent);
  for (double g : want.dq.to_f64_vector()) REQUIRE(g == 0.0);
  for (TaylorImpl impl : {TaylorImpl::parallel, TaylorImpl::chunked}) {
    Run got = final_only(impl);
    for (double g : got.dq.to_f64_vector()) CHECK(g == 0.0);
    CHECK(rel_error(got.dk, want.dk) < 1e-12);
    CHECK(rel_error(got.dv, want.dv) < 1e-12);
    CHECK(rel_error(got.ds0, want.ds0) < 1e-12);
  }
}

TEST_CASE("taylor: f32 against f64, every form and both variants") {
  // Tolerance 2e-6 relative (norm-wise) on outputs, final state and gradients at f = 16, e = 8,
  // T = 130 (observed up to 3e-7): f32 rounding of sums of up to 130 quadratic scores.
  Generator gen(5);
  const HeadShape n{2, 130, 2, 16, 8};
  Inputs in = make_inputs(gen, n, true);
  Tensor r_y = randn64(n.v(), gen, 1.0, false), r_f = randn64(state_shape(n), gen, 1.0, false);
  double worst = 0;
  for (bool normalize : {true, false}) {
    Run want = run(leaves(in), opts(TaylorImpl::recurrent, normalize), r_y, r_f);
    for (TaylorImpl impl : kAllImpls) {
      CAPTURE(normalize);
      CAPTURE(static_cast<int>(impl));
      Run got = run(leaves(in, DType::f32), opts(impl, normalize, 64), r_y.to(DType::f32), r_f.to(DType::f32));
      CHECK(got.y.dtype() == DType::f32);
      const double err = worst_error(got, want);
      CHECK(err < 2e-6);
      worst = std::max(worst, err);
    }
  }
  MESSAGE("taylor f32 against f64, worst relative difference: " << worst);
}

namespace {

// Time steps [t0, t1) of a [1, T, H, w] tensor, as a differentiable view.
Tensor steps(const Tensor& x, int64_t t0, int64_t t1) {
  const int64_t T = x.size(1), H = x.size(2), w = x.size(3);
  return x.reshape({T, H, w}).slice_outer(t0, t1).reshape({1, t1 - t0, H, w});
}

}  // namespace

TEST_CASE("taylor: chaining segments through the state equals one run, forward and backward") {
  // Segments [0, 37), [37, 64), [64, 100): each one's final state is the next one's initial state
  // (what sequence parallelism and chunked prefill do). Outputs, final state and every gradient
  // (the state gradient flows back across segments) match the single run to 1e-12 in f64.
  Generator gen(6);
  const HeadShape n{1, 100, 3, 4, 5};
  const std::vector<int64_t> cuts{0, 37, 64, 100};
  Inputs in = make_inputs(gen, n, true);
  Tensor r_y = randn64(n.v(), gen, 1.0, false), r_f = randn64(state_shape(n), gen, 1.0, false);
  for (TaylorImpl impl : kAllImpls)
    for (bool normalize : {true, false}) {
      CAPTURE(static_cast<int>(impl));
      CAPTURE(normalize);
      Run whole = run(leaves(in), opts(impl, normalize, 16), r_y, r_f);
      Inputs x = leaves(in);
      Tensor state = x.s0, loss;
      std::vector<Tensor> outs;
      for (size_t i = 0; i + 1 < cuts.size(); ++i) {
        auto [y, fin] = taylor_attention(steps(x.q, cuts[i], cuts[i + 1]), steps(x.k, cuts[i], cuts[i + 1]),
                                         steps(x.v, cuts[i], cuts[i + 1]), state, opts(impl, normalize, 16));
        Tensor part = sum(mul(y, steps(r_y, cuts[i], cuts[i + 1])));
        loss = loss.defined() ? add(loss, part) : part;
        outs.push_back(y);
        state = fin;
      }
      add(loss, sum(mul(state, r_f))).backward();
      for (size_t i = 0; i < outs.size(); ++i)
        CHECK(rel_error(outs[i].detach(), steps(whole.y, cuts[i], cuts[i + 1])) < 1e-12);
      CHECK(worst_error({whole.y, state.detach(), x.q.grad(), x.k.grad(), x.v.grad(), x.s0.grad()}, whole) < 1e-12);
    }
}

TEST_CASE("taylor: decoding token by token with the recurrent form matches the chunked training form") {
  Generator gen(7);
  const HeadShape n{1, 45, 2, 16, 4};
  Inputs in = make_inputs(gen, n, false);
  auto [want_y, want_f] = taylor_attention(in.q, in.k, in.v, Tensor(), opts(TaylorImpl::chunked, true, 16));
  Tensor state;
  for (int64_t t = 0; t < n.T; ++t) {
    auto [y, fin] = taylor_attention(steps(in.q, t, t + 1), steps(in.k, t, t + 1), steps(in.v, t, t + 1), state,
                                     opts(TaylorImpl::recurrent, true));
    CHECK(rel_error(y, steps(want_y, t, t + 1)) < 1e-12);
    state = fin;
  }
  CHECK(rel_error(state, want_f) < 1e-12);
}

TEST_CASE("taylor: bad inputs name the tensor and the expected shape") {
  Generator gen(8);
  const HeadShape n{1, 6, 3, 4, 2};
  Inputs in = make_inputs(gen, n, false);
  Tensor bad_state = Tensor::zeros({1, 3, 4, 2}, DType::f64);
  CHECK_THROWS_WITH_AS(taylor_attention(in.q, in.k, in.v, bad_state),
                       doctest::Contains("initial_state [1, 3, 4, 2] must be [B, H, D', e + 1] = [1, 3, 15, 3]"),
                       eat::Error);
  CHECK_THROWS_WITH_AS(taylor_attention(in.q, randn64({1, 6, 3, 5}, gen, 1.0, false), in.v),
                       doctest::Contains("must have the same shape"), eat::Error);
  CHECK_THROWS_WITH_AS(taylor_attention(in.q, in.k, randn64({1, 5, 3, 2}, gen, 1.0, false)),
                       doctest::Contains("in batch, time and heads"), eat::Error);
  CHECK_THROWS_WITH_AS(taylor_attention(in.q, in.k, in.v, Tensor(), opts(TaylorImpl::chunked, true, 0)),
                       doctest::Contains("block must be >= 1"), eat::Error);
  TaylorOptions negative = opts(TaylorImpl::chunked, true);
  negative.eps = -1;
  CHECK_THROWS_WITH_AS(taylor_attention(in.q, in.k, in.v, Tensor(), negative), doctest::Contains("eps must be >= 0"),
                       eat::Error);
}

namespace {

// Both schedules of the chunked kernel, called directly (the op picks one by head and thread
// count), with and without an initial state, both variants, and asking for only some gradients:
// everything must be bit-identical.
template <typename T>
void check_schedules_agree(const HeadShape& s, int64_t block) {
  Generator gen(11);
  auto random = [&](const Shape& shape, double stddev) {
    std::vector<T> out;
    for (double x : Tensor::randn(shape, gen, stddev, DType::f64).to_f64_vector()) out.push_back(static_cast<T>(x));
    return out;
  };
  const Shape states = state_shape(s);
  auto q = random(s.qk(), 0.7), k = random(s.qk(), 0.7), v = random(s.v(), 1.0), dy = random(s.v(), 1.0);
  auto dfinal = random(states, 1.0);
  // A positive normaliser column, as a prefix of real tokens leaves.
  std::vector<T> s0 = random(states, 0.1);
  for (size_t i = static_cast<size_t>(s.e); i < s0.size(); i += static_cast<size_t>(s.e + 1)) s0[i] = std::abs(s0[i]) + 3;
  struct Result {
    std::vector<T> y, fin, dq, dk, dv, ds0;
    std::vector<cpu::RowStat> den;
  };
  auto run_kernels = [&](cpu::ChunkedSchedule schedule, const T* init, bool normalize, bool only_state_grads) {
    const TaylorKernelArgs args{block, normalize, 1e-12};
    Result r{std::vector<T>(dy.size()), std::vector<T>(dfinal.size()), std::vector<T>(q.size(), T(-1)),
             std::vector<T>(k.size(), T(-1)), std::vector<T>(v.size(), T(-1)), std::vector<T>(dfinal.size()),
             std::vector<cpu::RowStat>(static_cast<size_t>(s.B * s.T * s.H))};
    cpu::taylor_chunked_forward_scheduled<T>(s, args, q.data(), k.data(), v.data(), init, r.y.data(), r.fin.data(),
                                             r.den.data(), schedule);
    cpu::taylor_chunked_backward_scheduled<T>(s, args, q.data(), k.data(), v.data(), init, r.y.data(), r.den.data(),
                                              dy.data(), dfinal.data(), only_state_grads ? nullptr : r.dq.data(),
                                              only_state_grads ? nullptr : r.dk.data(), r.dv.data(), r.ds0.data(),
                                              schedule);
    return r;
  };
  for (const T* init : {static_cast<const T*>(nullptr), static_cast<const T*>(s0.data())})
    for (bool normalize : {true, false})
      for (bool only_state_grads : {false, true}) {
        CAPTURE(init != nullptr);
        CAPTURE(normalize);
        CAPTURE(only_state_grads);
        Result a = run_kernels(cpu::ChunkedSchedule::per_head, init, normalize, only_state_grads);
        Result b = run_kernels(cpu::ChunkedSchedule::per_block, init, normalize, only_state_grads);
        CHECK(a.y == b.y);
        CHECK(a.fin == b.fin);
        CHECK(a.dq == b.dq);
        CHECK(a.dk == b.dk);
        CHECK(a.dv == b.dv);
        CHECK(a.ds0 == b.ds0);
        if (only_state_grads) CHECK(a.dq == std::vector<T>(q.size(), T(-1)));  // not asked for: untouched
      }
}

}  // namespace

TEST_CASE("taylor: the chunked kernel's per-head and per-block schedules are bit-identical") {
  check_schedules_agree<float>({2, 150, 3, 16, 8}, 32);
  check_schedules_agree<double>({1, 70, 2, 4, 5}, 16);
  check_schedules_agree<double>({1, 1, 1, 3, 2}, 64);
}

TEST_CASE("taylor: a long sequence in f32 stays close to f64 (chunked, blocks of 64 and 256)") {
  // T = 4096 tokens sum into the states and normalisers: f32 must stay within 2e-6 relative of the
  // f64 result on outputs, final state and every gradient (observed 2e-7 to 3.3e-7).
  Generator gen(9);
  const HeadShape n{1, 4096, 2, 16, 8};
  Inputs in = make_inputs(gen, n, true);
  Tensor r_y = randn64(n.v(), gen, 1.0, false), r_f = randn64(state_shape(n), gen, 1e-3, false);
  for (bool normalize : {true, false}) {
    CAPTURE(normalize);
    Run want = run(leaves(in), opts(TaylorImpl::chunked, normalize, 64), r_y, r_f);
    for (int64_t block : {64, 256}) {
      CAPTURE(block);
      const double err = worst_error(
          run(leaves(in, DType::f32), opts(TaylorImpl::chunked, normalize, block), r_y.to(DType::f32), r_f.to(DType::f32)),
          want);
      CHECK(err < 2e-6);
      MESSAGE("taylor f32 at T = 4096, block " << block << ": worst relative difference " << err);
    }
  }
}

TEST_CASE("taylor: summing earlier segments' own states as the initial state equals one run (sequence parallelism)") {
  // Each segment's state from a zero start, the earlier ones summed, is the prefix a later segment
  // takes (what ranks do after gathering their states). Outputs and every gradient (through the
  // sums into the earlier segments' k and v) match the single run to 1e-12 in f64.
  Generator gen(10);
  const HeadShape n{1, 90, 2, 4, 3};
  const std::vector<int64_t> cuts{0, 30, 61, 90};
  Inputs in = make_inputs(gen, n, false);
  Tensor r_y = randn64(n.v(), gen, 1.0, false);
  for (bool normalize : {true, false}) {
    CAPTURE(normalize);
    Inputs whole_in = leaves(in);
    Tensor whole_y =
        taylor_attention(whole_in.q, whole_in.k, whole_in.v, Tensor(), opts(TaylorImpl::chunked, normalize, 16)).first;
    sum(mul(whole_y, r_y)).backward();
    Inputs x = leaves(in);
    std::vector<Tensor> local_states;
    Tensor loss;
    for (size_t i = 0; i + 1 < cuts.size(); ++i) {
      Tensor q = steps(x.q, cuts[i], cuts[i + 1]), k = steps(x.k, cuts[i], cuts[i + 1]), v = steps(x.v, cuts[i], cuts[i + 1]);
      Tensor prefix;
      for (const Tensor& st : local_states) prefix = prefix.defined() ? add(prefix, st) : st;
      Tensor y = taylor_attention(q, k, v, prefix, opts(TaylorImpl::chunked, normalize, 16)).first;
      CHECK(rel_error(y.detach(), steps(whole_y.detach(), cuts[i], cuts[i + 1])) < 1e-12);
      local_states.push_back(taylor_attention(q, k, v, Tensor(), opts(TaylorImpl::chunked, normalize, 16)).second);
      Tensor part = sum(mul(y, steps(r_y, cuts[i], cuts[i + 1])));
      loss = loss.defined() ? add(loss, part) : part;
    }
    loss.backward();
    CHECK(rel_error(x.q.grad(), whole_in.q.grad()) < 1e-12);
    CHECK(rel_error(x.k.grad(), whole_in.k.grad()) < 1e-12);
    CHECK(rel_error(x.v.grad(), whole_in.v.grad()) < 1e-12);
  }
}
