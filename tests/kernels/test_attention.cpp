#include <omp.h>

#include <cstring>

#include "framework/parallel/lasp2.h"
#include "gradcheck.h"
#include "kernels/cpu/attention_flops.h"
#include "kernels/cpu/attention_tiled.h"

using namespace eat;
using namespace eat::test;

namespace {

// ---- a test-local reference, written straight from the definition with plain loops in double

bool attends(int64_t t, int64_t j, const AttentionOptions& o) {
  if (!o.causal) return true;
  return j <= t && (o.window_left < 0 || j >= t - o.window_left);
}

struct Result {
  std::vector<double> out, dq, dk, dv;
};

// out = softmax(scale q k^T, masked) v per (b, h); gradients of sum(out * seed).
Result reference_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& seed,
                           const AttentionOptions& o) {
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), d = q.size(3), e = v.size(3);
  const double scale = o.scale.value_or(1.0 / std::sqrt(double(d)));
  auto Q = q.to_f64_vector(), K = k.to_f64_vector(), V = v.to_f64_vector(), dO = seed.to_f64_vector();
  Result r{std::vector<double>(V.size()), std::vector<double>(Q.size()), std::vector<double>(K.size()),
           std::vector<double>(V.size())};
  auto qi = [&](int64_t b, int64_t t, int64_t h) { return ((b * T + t) * H + h) * d; };
  auto vi = [&](int64_t b, int64_t t, int64_t h) { return ((b * T + t) * H + h) * e; };
  std::vector<double> p(T), dp(T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        double mx = -1e300;
        for (int64_t j = 0; j < T; ++j) {
          p[j] = 0;
          if (!attends(t, j, o)) continue;
          double s = 0;
          for (int64_t c = 0; c < d; ++c) s += Q[qi(b, t, h) + c] * K[qi(b, j, h) + c];
          p[j] = s * scale;
          mx = std::max(mx, p[j]);
        }
        double total = 0;
        for (int64_t j = 0; j < T; ++j)
          if (attends(t, j, o)) total += p[j] = std::exp(p[j] - mx);
        for (int64_t j = 0; j < T; ++j) p[j] = attends(t, j, o) ? p[j] / total : 0.0;
        double dot = 0;
        for (int64_t j = 0; j < T; ++j) {
          dp[j] = 0;
          for (int64_t c = 0; c < e; ++c) {
            r.out[vi(b, t, h) + c] += p[j] * V[vi(b, j, h) + c];
            r.dv[vi(b, j, h) + c] += p[j] * dO[vi(b, t, h) + c];
            dp[j] += dO[vi(b, t, h) + c] * V[vi(b, j, h) + c];
          }
          dot += p[j] * dp[j];
        }
        for (int64_t j = 0; j < T; ++j) {
          const double ds = p[j] * (dp[j] - dot) * scale;
          for (int64_t c = 0; c < d; ++c) {
            r.dq[qi(b, t, h) + c] += ds * K[qi(b, j, h) + c];
            r.dk[qi(b, j, h) + c] += ds * Q[qi(b, t, h) + c];
          }
        }
      }
  return r;
}

// Runs the op forward and backward with upstream gradient `seed` on fresh leaves.
Result run_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& seed,
                     const AttentionOptions& o) {
  Tensor q1 = q.detach().clone().requires_grad_(), k1 = k.detach().clone().requires_grad_(),
         v1 = v.detach().clone().requires_grad_();
  Tensor out = attention(q1, k1, v1, o);
  out.backward(seed);
  return {out.to_f64_vector(), q1.grad().to_f64_vector(), k1.grad().to_f64_vector(), v1.grad().to_f64_vector()};
}

void check_close(const Result& a, const Result& b, double tol) {
  CHECK(rel_error(a.out, b.out) < tol);
  CHECK(rel_error(a.dq, b.dq) < tol);
  CHECK(rel_error(a.dk, b.dk) < tol);
  CHECK(rel_error(a.dv, b.dv) < tol);
}

AttentionOptions options(AttentionImpl impl, bool causal, int64_t window, std::optional<double> scale = {}) {
  AttentionOptions o;
  o.impl = impl;
  o.causal = causal;
  o.window_left = window;
  o.scale = scale;
  return o;
}

// Every mask the op supports for a sequence of T tokens: full, causal, and windows from a single
// key up to past the sequence end.
std::vector<std::pair<bool, int64_t>> masks(int64_t T) {
  std::vector<std::pair<bool, int64_t>> m{{false, -1}, {true, -1}};
  for (int64_t w : {int64_t(0), int64_t(5), int64_t(63), int64_t(64), int64_t(100), T - 1})
    if (w >= 0) m.push_back({true, w});
  return m;
}

}  // namespace

TEST_CASE("attention naive: forward and gradients against a triple-loop reference, every option") {
  // Both are f64 computations of the same sums in different orders: 1e-12 relative.
  Generator gen(20);
  struct Shape4 {
    int64_t B, T, H, d, e;
  };
  for (Shape4 s : {Shape4{1, 1, 1, 3, 2}, Shape4{2, 9, 3, 4, 6}, Shape4{1, 17, 2, 5, 3}}) {
    Tensor q = randn64({s.B, s.T, s.H, s.d}, gen, 1.0, false), k = randn64({s.B, s.T, s.H, s.d}, gen, 1.0, false),
           v = randn64({s.B, s.T, s.H, s.e}, gen, 1.0, false), seed = randn64({s.B, s.T, s.H, s.e}, gen, 1.0, false);
    for (auto [causal, window] : std::vector<std::pair<bool, int64_t>>{
             {false, -1}, {true, -1}, {true, 0}, {true, 1}, {true, 4}, {true, s.T - 1}, {true, 1000}})
      for (std::optional<double> scale : {std::optional<double>(), std::optional<double>(0.7)}) {
        CAPTURE(s.T);
        CAPTURE(causal);
        CAPTURE(window);
        AttentionOptions o = options(AttentionImpl::naive, causal, window, scale);
        check_close(run_attention(q, k, v, seed, o), reference_attention(q, k, v, seed, o), 1e-12);
      }
  }
}

TEST_CASE("attention tiled: forward and all gradients match naive in f64 across shapes and masks") {
  // Tiles are 64 x 64, so T = 64, 65, 130, 200 cover exact, one-over, partial and several tiles;
  // windows 63 / 64 / 100 put band edges on and across tile boundaries. f64: 1e-12 relative.
  Generator gen(21);
  const int64_t d = 6, e = 5;
  for (int64_t T : {1, 7, 64, 65, 130, 200})
    for (int64_t B : {1, 2})
      for (int64_t H : {1, 3}) {
        Tensor q = randn64({B, T, H, d}, gen, 1.0, false), k = randn64({B, T, H, d}, gen, 1.0, false),
               v = randn64({B, T, H, e}, gen, 1.0, false), seed = randn64({B, T, H, e}, gen, 1.0, false);
        for (auto [causal, window] : masks(T)) {
          CAPTURE(T);
          CAPTURE(B);
          CAPTURE(H);
          CAPTURE(causal);
          CAPTURE(window);
          check_close(run_attention(q, k, v, seed, options(AttentionImpl::tiled, causal, window)),
                      run_attention(q, k, v, seed, options(AttentionImpl::naive, causal, window)), 1e-12);
        }
      }
}

TEST_CASE("attention tiled: peaked scores (online max rescaling) and a custom scale match naive") {
  // Scores with a spread of ~30 make the running max move between key tiles many times.
  Generator gen(22);
  const int64_t B = 1, T = 150, H = 2, d = 8, e = 3;
  Tensor q = randn64({B, T, H, d}, gen, 4.0, false), k = randn64({B, T, H, d}, gen, 4.0, false),
         v = randn64({B, T, H, e}, gen, 1.0, false), seed = randn64({B, T, H, e}, gen, 1.0, false);
  for (auto [causal, window] : masks(T)) {
    CAPTURE(causal);
    CAPTURE(window);
    check_close(run_attention(q, k, v, seed, options(AttentionImpl::tiled, causal, window, 0.9)),
                run_attention(q, k, v, seed, options(AttentionImpl::naive, causal, window, 0.9)), 1e-12);
  }
}

TEST_CASE("attention: gradient checks of both kernels on awkward shapes") {
  Generator gen(23);
  struct Case {
    int64_t B, T, H, d, e;
    bool causal;
    int64_t window;
  };
  // T = 1, one head, d != e, a window of one key, full attention, and (for the tiled kernel) a
  // sequence spanning two tiles with a window that crosses the tile boundary.
  for (Case c : {Case{1, 1, 1, 3, 2, true, -1}, Case{2, 5, 2, 3, 4, true, 1}, Case{1, 6, 1, 2, 3, false, -1},
                 Case{1, 7, 3, 3, 1, true, 0}, Case{1, 70, 1, 2, 2, true, 9}})
    for (AttentionImpl impl : {AttentionImpl::naive, AttentionImpl::tiled}) {
      Tensor q = randn64({c.B, c.T, c.H, c.d}, gen), k = randn64({c.B, c.T, c.H, c.d}, gen),
             v = randn64({c.B, c.T, c.H, c.e}, gen);
      AttentionOptions o = options(impl, c.causal, c.window);
      CAPTURE(c.T);
      CAPTURE(c.window);
      CAPTURE(impl == AttentionImpl::tiled);
      CHECK(gradcheck("attention", [o](auto& in) { return attention(in[0], in[1], in[2], o); }, {q, k, v}) <= 1.0);
    }
}

TEST_CASE("attention: gradients reach only the inputs that require them") {
  Generator gen(24);
  Tensor q = randn64({1, 70, 2, 4}, gen, 1.0, false), k = randn64({1, 70, 2, 4}, gen, 1.0, false),
         v = randn64({1, 70, 2, 3}, gen, 1.0, false), seed = randn64({1, 70, 2, 3}, gen, 1.0, false);
  AttentionOptions o = options(AttentionImpl::tiled, true, 20);
  Result ref = reference_attention(q, k, v, seed, o);
  for (int which = 0; which < 3; ++which) {
    Tensor in[3] = {q.detach().clone(), k.detach().clone(), v.detach().clone()};
    in[which].requires_grad_();
    attention(in[0], in[1], in[2], o).backward(seed);
    for (int j = 0; j < 3; ++j) CHECK(in[j].grad().defined() == (j == which));
    const std::vector<double>& want = which == 0 ? ref.dq : which == 1 ? ref.dk : ref.dv;
    CHECK(rel_error(in[which].grad().to_f64_vector(), want) < 1e-12);
  }
}

TEST_CASE("attention tiled: bit-identical across runs and thread counts") {
  // One head, so the parallel split is over query / key tiles; each element is still summed by a
  // single task in a fixed order, so neither a rerun nor a different thread count changes a bit.
  Generator gen(26);
  const Shape qs{1, 300, 1, 16}, vs{1, 300, 1, 24};
  Tensor q = Tensor::randn(qs, gen), k = Tensor::randn(qs, gen), v = Tensor::randn(vs, gen),
         seed = Tensor::randn(vs, gen);
  auto bits = [&](int64_t window) {
    Tensor q1 = q.clone().requires_grad_(), k1 = k.clone().requires_grad_(), v1 = v.clone().requires_grad_();
    Tensor out = attention(q1, k1, v1, options(AttentionImpl::tiled, true, window));
    out.backward(seed);
    std::vector<float> all;
    for (const Tensor& t : {out, q1.grad(), k1.grad(), v1.grad()})
      all.insert(all.end(), t.data<float>(), t.data<float>() + t.numel());
    return all;
  };
  for (int64_t window : {int64_t(-1), int64_t(70)}) {
    // Three threads (whatever OMP_NUM_THREADS says), twice, then one.
    const int threads = omp_get_max_threads();
    omp_set_num_threads(3);
    std::vector<float> first = bits(window), second = bits(window);
    omp_set_num_threads(1);
    std::vector<float> single = bits(window);
    omp_set_num_threads(threads);
    REQUIRE(first.size() == second.size());
    CHECK(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(first.data(), single.data(), first.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("attention tiled: the backward's two schedules (by head, by tile) agree bit for bit") {
  // The backward runs one task per head when there are heads enough for the threads, else tasks per
  // tile; the thread count picks, so they must give the same bits. Head widths of whole vectors
  // (64) and ragged ones, windows, persistent keys, a query slice of longer keys (sequence
  // parallelism), and a missing gradient; f32, where rounding differences would show.
  struct Case {
    int64_t T, d, e, window, prefix, keys, query_offset;
    bool want_dk;
  };
  Generator gen(27);
  for (Case c : {Case{700, 64, 64, -1, 0, 0, 0, true}, Case{300, 16, 24, 70, 0, 0, 0, true},
                 Case{200, 8, 6, 30, 70, 0, 0, true}, Case{130, 64, 32, -1, 0, 330, 150, true},
                 Case{600, 64, 64, 100, 0, 0, 0, false}}) {
    CAPTURE(c.T);
    CAPTURE(c.window);
    AttentionDims dims;
    dims.batch = 2;
    dims.seq = c.T;
    dims.heads = 3;
    dims.qk_dim = c.d;
    dims.v_dim = c.e;
    dims.window_left = c.window;
    dims.scale = 1.0 / std::sqrt(static_cast<double>(c.d));
    dims.keys = c.keys;
    dims.query_offset = c.query_offset;
    dims.prefix = c.prefix;
    const int64_t rows = dims.key_rows(), H = dims.heads, B = dims.batch;
    auto values = [&](int64_t n) { return Tensor::randn({n}, gen).to_f64_vector(); };
    auto floats = [](const std::vector<double>& x) { return std::vector<float>(x.begin(), x.end()); };
    const auto q = floats(values(B * c.T * H * c.d)), k = floats(values(B * rows * H * c.d)),
               v = floats(values(B * rows * H * c.e)), dout = floats(values(B * c.T * H * c.e));
    std::vector<float> out(q.size() / c.d * c.e), lse(static_cast<size_t>(B * H * c.T));
    cpu::attention_tiled_forward<float>(q.data(), k.data(), v.data(), out.data(), lse.data(), dims);
    auto grads = [&](auto backward) {
      std::vector<float> dq(q.size()), dk(k.size()), dv(v.size());
      backward(q.data(), k.data(), v.data(), out.data(), lse.data(), dout.data(), dq.data(),
               c.want_dk ? dk.data() : nullptr, dv.data(), dims);
      dq.insert(dq.end(), dk.begin(), dk.end());
      dq.insert(dq.end(), dv.begin(), dv.end());
      return dq;
    };
    const std::vector<float> by_head = grads(cpu::attention_tiled_backward_by_head<float>),
                             by_tile = grads(cpu::attention_tiled_backward_by_tile<float>);
    REQUIRE(by_head.size() == by_tile.size());
    CHECK(std::memcmp(by_head.data(), by_tile.data(), by_head.size() * sizeof(float)) == 0);
    // And not trivially: the gradients are there.
    CHECK(std::any_of(by_head.begin(), by_head.end(), [](float x) { return x != 0.0f; }));
  }
}

TEST_CASE("attention: pair and FLOP counts match a brute-force count of the mask") {
  for (int64_t T : {1, 7, 64, 130})
    for (auto [causal, window] : masks(T)) {
      AttentionOptions o = options(AttentionImpl::tiled, causal, window);
      int64_t pairs = 0;
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < T; ++j) pairs += attends(t, j, o);
      CAPTURE(T);
      CAPTURE(window);
      CHECK(cpu::attention_pairs(T, causal, window) == pairs);
      CHECK(cpu::attention_flops(2, T, 3, 8, 4, causal, window, false) == 6.0 * pairs * (16 + 8));
      CHECK(cpu::attention_flops(2, T, 3, 8, 4, causal, window, true) == 6.0 * pairs * (16 + 8 + 2 * (24 + 8)));
    }
}

TEST_CASE("attention: bad inputs are rejected with the op and the shapes") {
  Tensor q = Tensor::zeros({1, 4, 2, 3}), k = Tensor::zeros({1, 4, 2, 3}), v = Tensor::zeros({1, 4, 2, 5});
  CHECK_THROWS_WITH_AS(attention(q, Tensor::zeros({1, 5, 2, 3}), v),
                       doctest::Contains("attention: v [1, 4, 2, 5] must share B, T, H with k [1, 5, 2, 3]"), Error);
  CHECK_THROWS_WITH_AS(attention(q, k, Tensor::zeros({1, 6, 2, 5})),
                       doctest::Contains("attention: v [1, 6, 2, 5] must share B, T, H with k [1, 4, 2, 3]"), Error);
  AttentionOptions naive;
  naive.impl = AttentionImpl::naive;
  CHECK_THROWS_WITH_AS(attention(q, Tensor::zeros({1, 5, 2, 3}), Tensor::zeros({1, 5, 2, 5}), naive),
                       doctest::Contains("need the tiled kernel"), Error);
  AttentionOptions late;
  late.query_offset = 2;
  CHECK_THROWS_WITH_AS(attention(q, Tensor::zeros({1, 5, 2, 3}), Tensor::zeros({1, 5, 2, 5}), late),
                       doctest::Contains("queries at positions [2, 6) do not fit the 5 keys"), Error);
  CHECK_THROWS_WITH_AS(attention(q, Tensor::zeros({1, 4, 2, 4}), v), doctest::Contains("must have the same shape"),
                       Error);
  CHECK_THROWS_WITH_AS(attention(Tensor::zeros({4, 2, 3}), k, v), doctest::Contains("must have 4 dimensions, got [4, 2, 3]"),
                       Error);
  CHECK_THROWS_WITH_AS(attention(q, k, v, options(AttentionImpl::tiled, false, 3)),
                       doctest::Contains("attention: window_left = 3 needs causal = true"), Error);
  CHECK_THROWS_WITH_AS(attention(q, k, v, options(AttentionImpl::naive, true, -2)),
                       doctest::Contains("attention: window_left must be >= 0 (a sliding window) or -1 (none), got -2"),
                       Error);
  CHECK_THROWS_WITH_AS(attention(q, k, v.to(DType::f64)), doctest::Contains("attention"), Error);
}

TEST_CASE("attention: keys = 0 under queries is refused with the op and the shapes, causal or not") {
  Tensor q = Tensor::zeros({1, 4, 2, 3}), k = Tensor::zeros({1, 0, 2, 3}), v = Tensor::zeros({1, 0, 2, 5});
  for (AttentionImpl impl : {AttentionImpl::naive, AttentionImpl::tiled})
    for (bool causal : {false, true})
      CHECK_THROWS_WITH_AS(attention(q, k, v, options(impl, causal, -1)),
                           doctest::Contains("attention: k [1, 0, 2, 3] holds no keys for the 4 queries of q [1, 4, 2, 3]"),
                           Error);
}

TEST_CASE("attention: an empty sequence gives an empty output and empty gradients") {
  for (AttentionImpl impl : {AttentionImpl::naive, AttentionImpl::tiled}) {
    Tensor q = Tensor::zeros({2, 0, 3, 4}).requires_grad_(), k = Tensor::zeros({2, 0, 3, 4}).requires_grad_(),
           v = Tensor::zeros({2, 0, 3, 5}).requires_grad_();
    Tensor out = attention(q, k, v, options(impl, true, -1));
    CHECK(out.shape() == Shape{2, 0, 3, 5});
    out.backward(Tensor::zeros({2, 0, 3, 5}));
    CHECK(q.grad().shape() == q.shape());
    CHECK(v.grad().shape() == v.shape());
  }
}

TEST_CASE("attention: queries as a slice of longer keys (query_offset) equal those rows of the whole (f64)") {
  // Sequence parallelism gives each rank a slice of the queries and every key: the output rows
  // and all gradients must be exactly the whole sequence's, with the seed zero outside the slice.
  Generator gen(77);
  for (int64_t window : {int64_t{-1}, int64_t{9}}) {
    for (auto [T, t0, L] : {std::tuple<int64_t, int64_t, int64_t>{150, 70, 50}, {130, 0, 65}, {130, 65, 65}, {40, 39, 1}}) {
      CAPTURE(window);
      CAPTURE(t0);
      const int64_t B = 2, H = 2, d = 4, e = 3;
      Tensor q = randn64({B, T, H, d}, gen), k = randn64({B, T, H, d}, gen), v = randn64({B, T, H, e}, gen);
      // The seed: random on the slice's rows, zero elsewhere.
      std::vector<double> seed_full(static_cast<size_t>(B * T * H * e), 0.0), seed_part;
      Generator sg(5);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = t0; t < t0 + L; ++t)
          for (int64_t i = 0; i < H * e; ++i) {
            double x = sg.normal();
            seed_full[static_cast<size_t>((b * T + t) * H * e + i)] = x;
            seed_part.push_back(x);
          }
      AttentionOptions full_opt;
      full_opt.window_left = window;
      Tensor o_full = attention(q, k, v, full_opt);
      o_full.backward(Tensor::from_vector<double>(seed_full, o_full.shape()));
      // The slice, as its own tensor.
      std::vector<double> qv = q.to_f64_vector(), q_part;
      for (int64_t b = 0; b < B; ++b)
        q_part.insert(q_part.end(), qv.begin() + (b * T + t0) * H * d, qv.begin() + (b * T + t0 + L) * H * d);
      Tensor qs = Tensor::from_vector<double>(q_part, {B, L, H, d}).requires_grad_();
      Tensor k2 = k.detach().clone().requires_grad_(), v2 = v.detach().clone().requires_grad_();
      AttentionOptions opt = full_opt;
      opt.query_offset = t0;
      Tensor o = attention(qs, k2, v2, opt);
      o.backward(Tensor::from_vector<double>(seed_part, o.shape()));
      auto of = o_full.to_f64_vector(), op = o.to_f64_vector(), dqf = q.grad().to_f64_vector(), dqp = qs.grad().to_f64_vector();
      std::vector<double> of_rows, dq_rows;
      for (int64_t b = 0; b < B; ++b) {
        of_rows.insert(of_rows.end(), of.begin() + (b * T + t0) * H * e, of.begin() + (b * T + t0 + L) * H * e);
        dq_rows.insert(dq_rows.end(), dqf.begin() + (b * T + t0) * H * d, dqf.begin() + (b * T + t0 + L) * H * d);
      }
      CHECK(rel_error(op, of_rows) < 1e-13);
      CHECK(rel_error(dqp, dq_rows) < 1e-12);
      CHECK(rel_error(k2.grad(), k.grad()) < 1e-12);
      CHECK(rel_error(v2.grad(), v.grad()) < 1e-12);
    }
  }
}

// ---- persistent keys (prefix): rows of k and v before the sequence's keys that every query sees

namespace {

AttentionOptions with_prefix(AttentionOptions o, int64_t prefix, int64_t query_offset = 0) {
  o.prefix = prefix;
  o.query_offset = query_offset;
  return o;
}

}  // namespace

TEST_CASE("attention tiled with persistent keys: forward and all gradients match naive in f64") {
  // One persistent key, four, exactly one key tile and one over it (a second persistent tile),
  // under every mask; windows put the band's edge on and across tile boundaries. f64: 1e-12.
  Generator gen(41);
  const int64_t d = 5, e = 3;
  for (int64_t prefix : {1, 4, 64, 70})
    for (int64_t T : {1, 7, 65, 130})
      for (int64_t H : {1, 2}) {
        const int64_t B = T == 7 ? 2 : 1, rows = prefix + T;
        Tensor q = randn64({B, T, H, d}, gen, 1.0, false), k = randn64({B, rows, H, d}, gen, 1.0, false),
               v = randn64({B, rows, H, e}, gen, 1.0, false), seed = randn64({B, T, H, e}, gen, 1.0, false);
        for (auto [causal, window] : masks(T)) {
          CAPTURE(prefix);
          CAPTURE(T);
          CAPTURE(H);
          CAPTURE(causal);
          CAPTURE(window);
          check_close(run_attention(q, k, v, seed, with_prefix(options(AttentionImpl::tiled, causal, window), prefix)),
                      run_attention(q, k, v, seed, with_prefix(options(AttentionImpl::naive, causal, window), prefix)),
                      1e-12);
        }
      }
}

TEST_CASE("attention with persistent keys and no window is causal attention with the queries after them") {
  // Without a window, query t sees the prefix and sequence keys [0, t + offset]: exactly the keys a
  // causal query at position prefix + offset + t sees when the prefix rows are ordinary keys. The
  // two calls tile the keys differently: 1e-12 relative in f64, gradients of the prefix rows
  // included.
  Generator gen(42);
  for (auto [prefix, T, offset] : {std::tuple<int64_t, int64_t, int64_t>{1, 70, 0}, {4, 130, 9}, {67, 20, 50}}) {
    CAPTURE(prefix);
    CAPTURE(offset);
    const int64_t rows = prefix + offset + T;
    Tensor q = randn64({2, T, 2, 4}, gen, 1.0, false), k = randn64({2, rows, 2, 4}, gen, 1.0, false),
           v = randn64({2, rows, 2, 3}, gen, 1.0, false), seed = randn64({2, T, 2, 3}, gen, 1.0, false);
    const AttentionOptions causal = options(AttentionImpl::tiled, true, -1);
    check_close(run_attention(q, k, v, seed, with_prefix(causal, prefix, offset)),
                run_attention(q, k, v, seed, with_prefix(causal, 0, prefix + offset)), 1e-12);
  }
}

TEST_CASE("attention tiled: 512 persistent keys (one whole key span) are bit for bit the keys before the queries") {
  // Keys are taken in spans of up to 512 (whole 64-key tiles); the prefix takes spans of its own and
  // the band keeps its spans, so a prefix of exactly one span visits the same spans, in the same
  // order, with the same masks, as causal attention whose queries start after those 512 keys: the
  // same arithmetic, every bit (f32, forward and backward).
  Generator gen(45);
  const int64_t prefix = 512;
  for (int64_t T : {1, 100, 130}) {
    CAPTURE(T);
    Tensor q = Tensor::randn({2, T, 3, 8}, gen), k = Tensor::randn({2, prefix + T, 3, 8}, gen),
           v = Tensor::randn({2, prefix + T, 3, 6}, gen), seed = Tensor::randn({2, T, 3, 6}, gen);
    const AttentionOptions causal = options(AttentionImpl::tiled, true, -1);
    const Result with = run_attention(q, k, v, seed, with_prefix(causal, prefix)),
                 after = run_attention(q, k, v, seed, with_prefix(causal, 0, prefix));
    CHECK(with.out == after.out);
    CHECK(with.dq == after.dq);
    CHECK(with.dk == after.dk);
    CHECK(with.dv == after.dv);
  }
}

TEST_CASE("attention tiled with persistent keys: bit-identical across runs and thread counts") {
  // The persistent key tiles' dK/dV sum every query tile in one task, in order.
  Generator gen(43);
  const int64_t prefix = 70, T = 200;
  Tensor q = Tensor::randn({1, T, 1, 8}, gen), k = Tensor::randn({1, prefix + T, 1, 8}, gen),
         v = Tensor::randn({1, prefix + T, 1, 6}, gen), seed = Tensor::randn({1, T, 1, 6}, gen);
  auto bits = [&] {
    Tensor q1 = q.clone().requires_grad_(), k1 = k.clone().requires_grad_(), v1 = v.clone().requires_grad_();
    Tensor out = attention(q1, k1, v1, with_prefix(options(AttentionImpl::tiled, true, 30), prefix));
    out.backward(seed);
    std::vector<float> all;
    for (const Tensor& t : {out, q1.grad(), k1.grad(), v1.grad()})
      all.insert(all.end(), t.data<float>(), t.data<float>() + t.numel());
    return all;
  };
  const int threads = omp_get_max_threads();
  omp_set_num_threads(3);
  std::vector<float> first = bits(), second = bits();
  omp_set_num_threads(1);
  std::vector<float> single = bits();
  omp_set_num_threads(threads);
  REQUIRE(first.size() == second.size());
  CHECK(std::memcmp(first.data(), second.data(), first.size() * sizeof(float)) == 0);
  CHECK(std::memcmp(first.data(), single.data(), first.size() * sizeof(float)) == 0);
}

TEST_CASE("attention with persistent keys: an empty sequence leaves zero gradients on the prefix rows") {
  for (AttentionImpl impl : {AttentionImpl::naive, AttentionImpl::tiled}) {
    Generator gen(44);
    Tensor q = Tensor::zeros({2, 0, 3, 4}).requires_grad_(), k = Tensor::randn({2, 3, 3, 4}, gen).requires_grad_(),
           v = Tensor::randn({2, 3, 3, 5}, gen).requires_grad_();
    Tensor out = attention(q, k, v, with_prefix(options(impl, true, 2), 3));
    CHECK(out.shape() == Shape{2, 0, 3, 5});
    out.backward(Tensor::zeros({2, 0, 3, 5}));
    REQUIRE(k.grad().shape() == k.shape());
    REQUIRE(v.grad().shape() == v.shape());
    for (const Tensor& g : {k.grad(), v.grad()})
      for (double x : g.to_f64_vector()) CHECK(x == 0.0);
  }
}

TEST_CASE("attention with persistent keys: bad prefixes are rejected with the op and the shapes") {
  Tensor q = Tensor::zeros({1, 4, 2, 3}), k = Tensor::zeros({1, 6, 2, 3}), v = Tensor::zeros({1, 6, 2, 5});
  const AttentionOptions tiled = options(AttentionImpl::tiled, true, -1);
  const AttentionOptions naive = options(AttentionImpl::naive, true, -1);
  CHECK_THROWS_WITH_AS(attention(q, k, v, with_prefix(tiled, -1)),
                       doctest::Contains("attention: prefix = -1 persistent keys must be >= 0 and fit the 6 rows of "
                                         "k [1, 6, 2, 3]"),
                       Error);
  CHECK_THROWS_WITH_AS(attention(q, k, v, with_prefix(tiled, 7)),
                       doctest::Contains("attention: prefix = 7 persistent keys must be >= 0 and fit the 6 rows of "
                                         "k [1, 6, 2, 3]"),
                       Error);
  for (bool causal : {false, true})
    CHECK_THROWS_WITH_AS(attention(q, k, v, with_prefix(options(AttentionImpl::tiled, causal, -1), 6)),
                         doctest::Contains("attention: k [1, 6, 2, 3] holds no keys after its persistent prefix for "
                                           "the 4 queries of q [1, 4, 2, 3]"),
                         Error);
  // Causal queries must fit the keys after the prefix: 6 rows less 3 persistent leave 3 for 4 queries.
  CHECK_THROWS_WITH_AS(attention(q, k, v, with_prefix(tiled, 3)),
                       doctest::Contains("attention: queries at positions [0, 4) do not fit the 3 keys after the "
                                         "persistent prefix"),
                       Error);
  CHECK_THROWS_WITH_AS(attention(q, k, v, with_prefix(tiled, 1, 2)),
                       doctest::Contains("attention: queries at positions [2, 6) do not fit the 5 keys after the "
                                         "persistent prefix"),
                       Error);
  // The naive kernel takes a prefix, but as many sequence keys as queries.
  CHECK_THROWS_WITH_AS(attention(q, k, v, with_prefix(naive, 1)),
                       doctest::Contains("after its persistent prefix must have the same shape [B, T, H, d] (keys "
                                         "longer than the queries, or a query_offset, need the tiled kernel)"),
                       Error);
  CHECK_NOTHROW(attention(q, k, v, with_prefix(naive, 2)));
  CHECK_THROWS_WITH_AS(attention(q, k, Tensor::zeros({1, 5, 2, 5}), with_prefix(tiled, 2)),
                       doctest::Contains("attention: v [1, 5, 2, 5] must share B, T, H with k [1, 6, 2, 3]"), Error);
}

TEST_CASE("gated_attention refuses persistent keys") {
  Tensor q = Tensor::zeros({1, 4, 2, 3}), k = Tensor::zeros({1, 6, 2, 3}), v = Tensor::zeros({1, 6, 2, 5}),
         gates = Tensor::full({1, 4, 2}, 1.0);
  CHECK_THROWS_WITH_AS(gated_attention(q, k, v, gates, with_prefix(options(AttentionImpl::tiled, true, -1), 2)),
                       doctest::Contains("gated_attention: persistent keys (prefix = 2) are not supported"), Error);
}

TEST_CASE("attention_sp refuses persistent keys in a rank's share") {
  // The gather would repeat every rank's persistent rows among the sequence's keys.
  Tensor q = Tensor::zeros({1, 4, 2, 3}), k = Tensor::zeros({1, 6, 2, 3}), v = Tensor::zeros({1, 6, 2, 5});
  auto group = make_single_communicator();
  CHECK_THROWS_WITH_AS(attention_sp(q, k, v, *group, with_prefix(options(AttentionImpl::tiled, true, -1), 2)),
                       doctest::Contains("attention_sp: k and v hold this rank's tokens only (prefix = 2)"), Error);
}
