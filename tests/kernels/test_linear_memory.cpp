// Titans' linear memory: what the op table rows (framework/op_cases/linear_memory.cpp) cannot say:
// the checkpoint interval leaves every gradient bit-identical, the thread count too, a long run at
// the largest inner learning rate stays finite, a shared initial momentum, chaining two calls
// through the state, an empty sequence, and the error messages for bad inputs.
#include <omp.h>

#include <cmath>

#include "base/error.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

namespace {

struct Inputs {
  Tensor q, k, v, theta, eta, alpha, w0, s0;
  std::vector<Tensor*> all() { return {&q, &k, &v, &theta, &eta, &alpha, &w0, &s0}; }
};

// L2-normalised q and k (the model's), v, logits, and initial states [B, H, d, e] (w_heads_only:
// W [H, d, e]), all leaves requiring gradients.
Inputs make_inputs(Generator& gen, int64_t B, int64_t T, int64_t H, int64_t d, int64_t e, DType dtype,
                   bool w_heads_only = false, double theta_shift = 0.0) {
  auto leaf = [&](const Tensor& t) { return t.detach().to(dtype).requires_grad_(); };
  auto rn = [&](const Shape& s, double sd = 1.0) { return Tensor::randn(s, gen, sd, DType::f64); };
  Inputs in;
  in.q = leaf(l2_normalize(rn({B, T, H, d}), 1e-12));
  in.k = leaf(l2_normalize(rn({B, T, H, d}), 1e-12));
  in.v = leaf(rn({B, T, H, e}));
  std::vector<double> th = rn({B, T, H}).to_f64_vector();
  for (double& x : th) x += theta_shift;
  in.theta = leaf(Tensor::from_vector<double>(th, {B, T, H}));
  in.eta = leaf(rn({B, T, H}));
  in.alpha = leaf(rn({B, T, H}));
  in.w0 = leaf(rn(w_heads_only ? Shape{H, d, e} : Shape{B, H, d, e}, 0.3));
  in.s0 = leaf(rn({B, H, d, e}, 0.3));
  return in;
}

LinearMemoryResult run(const Inputs& in, const NeuralMemoryOptions& o) {
  return linear_memory(in.q, in.k, in.v, {in.theta, in.eta, in.alpha}, {in.w0, in.s0}, o);
}

// The outputs, then every input gradient after a backward of fixed random weights on y and both states.
std::vector<std::vector<double>> outputs_and_grads(Inputs in, const NeuralMemoryOptions& o) {
  for (Tensor* t : in.all()) t->zero_grad();
  LinearMemoryResult r = run(in, o);
  Generator gen(99);
  auto weighted = [&](const Tensor& x) { return sum(mul(x, Tensor::randn(x.shape(), gen, 1.0, x.dtype()))); };
  Tensor loss = add(add(weighted(r.y), weighted(r.state.w)), weighted(r.state.s));
  loss.backward();
  std::vector<std::vector<double>> out{r.y.to_f64_vector(), r.state.w.to_f64_vector(), r.state.s.to_f64_vector()};
  for (Tensor* t : in.all()) out.push_back(t->grad().to_f64_vector());
  return out;
}

bool all_finite(const std::vector<double>& x) {
  for (double a : x)
    if (!std::isfinite(a)) return false;
  return true;
}

}  // namespace

TEST_CASE("linear_memory: gradients are bit-identical for checkpoint intervals 1, 3 and sqrt(chunks)") {
  // T = 150 at chunk 16: 10 chunks, kept every chunk, every 3rd (4 kept, the last segment one
  // chunk long) and every 4th (0: ceil(sqrt(10))).
  for (DType dtype : {DType::f64, DType::f32}) {
    Generator gen(1);
    Inputs in = make_inputs(gen, 2, 150, 2, 8, 4, dtype);
    const auto every_chunk = outputs_and_grads(in, {.chunk = 16, .checkpoint_chunks = 1});
    for (int64_t every : {3, 0}) {
      CAPTURE(every);
      CHECK(outputs_and_grads(in, {.chunk = 16, .checkpoint_chunks = every}) == every_chunk);
    }
  }
}

TEST_CASE("linear_memory: outputs and gradients are bit-identical at 1 and 2 threads") {
  // Four heads (enough work to run in parallel), and one head of the model's width (Eigen's
  // products alone could use the threads).
  const int threads = omp_get_max_threads();
  Generator gen(2);
  for (const Inputs& in : {make_inputs(gen, 2, 64, 2, 16, 16, DType::f32, true),
                           make_inputs(gen, 1, 64, 1, 64, 64, DType::f32, true)}) {
    omp_set_num_threads(1);
    const auto one = outputs_and_grads(in, {.chunk = 16});
    omp_set_num_threads(2);
    const auto two = outputs_and_grads(in, {.chunk = 16});
    omp_set_num_threads(threads);
    CHECK(one == two);
  }
}

TEST_CASE("linear_memory: 16K tokens at theta = max_lr stay finite (f32)") {
  // theta logits around 20: theta = max_lr to f32 rounding for every token; q and k L2-normalised.
  Generator gen(3);
  Inputs in = make_inputs(gen, 1, 16384, 2, 64, 64, DType::f32, true, 20.0);
  const auto out = outputs_and_grads(in, {.chunk = 16});
  for (const auto& x : out) CHECK(all_finite(x));
}

namespace {

// Rows [begin, end) of axis 1 of x, as a new f64 tensor without gradient.
Tensor time_slice(const Tensor& x, int64_t begin, int64_t end) {
  const std::vector<double> all = x.to_f64_vector();
  const int64_t B = x.size(0), T = x.size(1), inner = x.numel() / std::max<int64_t>(1, B * T);
  std::vector<double> out;
  for (int64_t b = 0; b < B; ++b)
    out.insert(out.end(), all.begin() + (b * T + begin) * inner, all.begin() + (b * T + end) * inner);
  Shape shape = x.shape();
  shape[1] = end - begin;
  return Tensor::from_vector<double>(out, shape);
}

Inputs time_slice(const Inputs& in, int64_t begin, int64_t end) {
  return {time_slice(in.q, begin, end),     time_slice(in.k, begin, end),     time_slice(in.v, begin, end),
          time_slice(in.theta, begin, end), time_slice(in.eta, begin, end), time_slice(in.alpha, begin, end),
          Tensor(),                         Tensor()};
}

// A shared [H, d, e] state copied for every sequence: [B, H, d, e].
Tensor per_sequence(const Tensor& shared, int64_t B) {
  const std::vector<double> one = shared.to_f64_vector();
  std::vector<double> all;
  for (int64_t b = 0; b < B; ++b) all.insert(all.end(), one.begin(), one.end());
  return Tensor::from_vector<double>(all, {B, shared.size(0), shared.size(1), shared.size(2)});
}

}  // namespace

TEST_CASE("linear_memory: shared initial W and S, gradients against central differences and summed over the batch") {
  Generator gen(4);
  Inputs shared = make_inputs(gen, 2, 21, 2, 3, 2, DType::f64, true);
  shared.s0 = Tensor::randn({2, 3, 2}, gen, 0.3, DType::f64).requires_grad_();
  const NeuralMemoryOptions o{.chunk = 8};
  auto call = [&](const std::vector<Tensor>& in) {
    return linear_memory(in[0], in[1], in[2], {in[3], in[4], in[5]}, {in[6], in[7]}, o).y;
  };
  CHECK(gradcheck("linear_memory shared W and S", call,
                  {shared.q, shared.k, shared.v, shared.theta, shared.eta, shared.alpha, shared.w0, shared.s0}) <= 1.0);
  // The same states per sequence: the same outputs, and per-sequence gradients that sum to the shared ones.
  Inputs copied = shared;
  copied.w0 = per_sequence(shared.w0, 2).requires_grad_();
  copied.s0 = per_sequence(shared.s0, 2).requires_grad_();
  const auto a = outputs_and_grads(shared, o), b = outputs_and_grads(copied, o);
  for (size_t i = 0; i < 9; ++i) CHECK(a[i] == b[i]);  // outputs and the gradients of q .. alpha
  for (size_t i : {9, 10}) {
    const size_t n = a[i].size();
    std::vector<double> summed(b[i].begin(), b[i].begin() + n);
    for (size_t j = 0; j < n; ++j) summed[j] += b[i][n + j];
    CHECK(a[i] == summed);
  }
}

TEST_CASE("linear_memory: two calls chained through the state equal one call") {
  // Split at a chunk boundary (32 = 2 chunks of 16): the second call starts from the first's
  // final W and S, as decoding and sequence parallelism run it.
  Generator gen(5);
  Inputs in = make_inputs(gen, 2, 53, 2, 4, 3, DType::f64);
  const NeuralMemoryOptions o{.chunk = 16};
  NoGradGuard no_grad;
  const LinearMemoryResult whole = run(in, o);
  Inputs first = time_slice(in, 0, 32), second = time_slice(in, 32, 53);
  first.w0 = in.w0, first.s0 = in.s0;
  const LinearMemoryResult a = run(first, o);
  second.w0 = a.state.w, second.s0 = a.state.s;
  const LinearMemoryResult b = run(second, o);
  CHECK(rel_error(a.y, time_slice(whole.y, 0, 32)) < 1e-15);
  CHECK(rel_error(b.y, time_slice(whole.y, 32, 53)) < 1e-15);
  CHECK(rel_error(b.state.w, whole.state.w) < 1e-15);
  CHECK(rel_error(b.state.s, whole.state.s) < 1e-15);
}

TEST_CASE("linear_memory: an empty sequence passes the state and its gradient through") {
  Generator gen(6);
  Inputs in = make_inputs(gen, 2, 0, 2, 3, 4, DType::f64);
  LinearMemoryResult r = run(in, {});
  CHECK(r.y.shape() == Shape{2, 0, 2, 4});
  CHECK(r.state.w.to_f64_vector() == in.w0.to_f64_vector());
  CHECK(r.state.s.to_f64_vector() == in.s0.to_f64_vector());
  Tensor seed = Tensor::randn(r.state.w.shape(), gen, 1.0, DType::f64);
  sum(mul(add(r.state.w, r.state.s), seed)).backward();
  CHECK(in.w0.grad().to_f64_vector() == seed.to_f64_vector());
  CHECK(in.s0.grad().to_f64_vector() == seed.to_f64_vector());
}

TEST_CASE("linear_memory: bad inputs are refused with the op's name and the shapes") {
  Generator gen(7);
  const Inputs in = make_inputs(gen, 2, 5, 2, 3, 4, DType::f64);
  auto refuses = [&](const Inputs& x, const NeuralMemoryOptions& o, const char* message) {
    CHECK_THROWS_WITH_AS(run(x, o), doctest::Contains(message), Error);
  };
  Inputs bad = in;
  bad.eta = Tensor::zeros({2, 5, 3}, DType::f64);
  refuses(bad, {}, "linear_memory: the eta logits [2, 5, 3] must be [B, T, H] = [2, 5, 2]");
  bad = in;
  bad.alpha = Tensor();
  refuses(bad, {}, "linear_memory: the alpha logits are required");
  bad = in;
  bad.w0 = Tensor::zeros({3, 3, 4}, DType::f64);
  refuses(bad, {}, "linear_memory: the initial W [3, 3, 4] must be [B, H, d, e] = [2, 2, 3, 4] or [H, d, e] = [2, 3, 4]");
  bad = in;
  bad.s0 = Tensor::zeros({2, 2, 3, 4}, DType::f32);
  refuses(bad, {}, "linear_memory: the initial S is f32; with f64 inputs on cpu the states are f64");
  refuses(in, {.chunk = 0}, "linear_memory: chunk must be >= 1, got 0");
  refuses(in, {.max_lr = 0}, "linear_memory: max_lr must be > 0, got 0");
  refuses(in, {.checkpoint_chunks = -1}, "linear_memory: checkpoint_chunks must be >= 0");
}
