// The CUDA MLP memory (mlp_memory) beyond the op table's comparisons with the CPU: bit-identical
// results from run to run and whatever states the forward keeps, a long sequence at the model's
// head shape against the CPU, and the f32 states it requires.
#include <doctest/doctest.h>

#include <vector>

#include "base/error.h"
#include "framework/ops.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_compare.h"
#include "gpu/gpu_guard.h"
#include "rel_error.h"

using namespace eat;
using namespace eat::test;

namespace {

// Host inputs in f32: q, k L2-normalised, v, the theta, eta, alpha logits and shared initial
// weights [H, ...] of unit-variance outputs; the eta and alpha logits around -2 and -5 (a memory
// that keeps what it learns for a few hundred tokens).
std::vector<Tensor> host_inputs(int64_t B, int64_t T, int64_t H, int64_t d, int64_t h, int64_t e, Generator& gen) {
  auto r = [&](const Shape& s, double sd, double mean = 0.0) {
    return add(Tensor::randn(s, gen, sd, DType::f32), Tensor::full(s, mean, DType::f32));
  };
  return {l2_normalize(r({B, T, H, d}, 1.0), 1e-6), l2_normalize(r({B, T, H, d}, 1.0), 1e-6), r({B, T, H, e}, 1.0),
          r({B, T, H}, 1.0, 2.0), r({B, T, H}, 1.0, -2.0), r({B, T, H}, 1.0, -5.0),
          r({H, d, h}, 1.0 / std::sqrt(static_cast<double>(d))), r({H, h, e}, 1.0 / std::sqrt(static_cast<double>(h)))};
}

// y, the four final states and every input's gradient (the outputs seeded with fixed random
// weights) for inputs on `device` in `dtype` (the states f32 there), as f64 vectors.
std::vector<std::vector<double>> run(const std::vector<Tensor>& host, Device device, DType dtype,
                                     const NeuralMemoryOptions& options) {
  std::vector<Tensor> in;
  for (size_t i = 0; i < host.size(); ++i) {
    const DType want = i >= 6 ? DType::f32 : dtype;  // the initial weights are states: f32
    in.push_back(host[i].to(want).to(device).requires_grad_());
  }
  MlpMemoryResult r = mlp_memory(in[0], in[1], in[2], {in[3], in[4], in[5]}, {in[6], in[7], Tensor(), Tensor()}, options);
  Generator seeds(17);
  Tensor loss = sum(mul(cast(r.y, DType::f32), Tensor::randn(r.y.shape(), seeds, 1.0, DType::f32).to(device)));
  for (const Tensor* s : {&r.state.w1, &r.state.w2, &r.state.s1, &r.state.s2})
    loss = add(loss, sum(mul(*s, Tensor::randn(s->shape(), seeds, 1.0, DType::f32).to(device))));
  loss.backward();
  std::vector<std::vector<double>> out;
  for (const Tensor& t : {r.y, r.state.w1, r.state.w2, r.state.s1, r.state.s2}) out.push_back(t.detach().to_f64_vector());
  for (const Tensor& t : in) out.push_back(t.grad().to_f64_vector());
  return out;
}

}  // namespace

TEST_CASE("cuda mlp_memory: bit-identical from run to run and whatever states the forward keeps") {
  test::require_gpu();
  Generator gen(401);
  // 13 chunks of 16, the last one ragged.
  const std::vector<Tensor> host = host_inputs(2, 200, 3, 16, 64, 16, gen);
  for (DType dtype : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    const auto every = run(host, Device::cuda, dtype, {.chunk = 16, .max_lr = 0.1, .checkpoint_chunks = 1});
    CHECK(run(host, Device::cuda, dtype, {.chunk = 16, .max_lr = 0.1, .checkpoint_chunks = 1}) == every);
    CHECK(run(host, Device::cuda, dtype, {.chunk = 16, .max_lr = 0.1, .checkpoint_chunks = 3}) == every);
    CHECK(run(host, Device::cuda, dtype, {.chunk = 16, .max_lr = 0.1, .checkpoint_chunks = 0}) == every);
  }
}

TEST_CASE("cuda mlp_memory: 4K tokens at the model's head shape (d 64, hidden 256) match the CPU (f32)") {
  // 256 chunks through the non-linear recurrence; the CPU's own f32 error against f64 at this kind
  // of length is below 3e-6 (states) and 5e-7 (y, gradients).
  test::require_gpu();
  Generator gen(402);
  const std::vector<Tensor> host = host_inputs(1, 4096, 2, 64, 256, 64, gen);
  const NeuralMemoryOptions options{.chunk = 16, .max_lr = 0.1, .checkpoint_chunks = 0};
  const auto gpu = run(host, Device::cuda, DType::f32, options), cpu = run(host, Device::cpu, DType::f32, options);
  for (size_t i = 0; i < gpu.size(); ++i) {
    CAPTURE(i);  // y, W1, W2, S1, S2, then the gradients of q, k, v, the logits, W1, W2
    const bool final_state = i >= 1 && i <= 4;
    CHECK(rel_error(gpu[i], cpu[i]) < (final_state ? 1e-4 : 2e-5));
  }
}

TEST_CASE("cuda mlp_memory: the states are f32 whatever the inputs") {
  test::require_gpu();
  Generator gen(403);
  const std::vector<Tensor> host = host_inputs(1, 5, 1, 4, 8, 4, gen);
  std::vector<Tensor> in;
  for (const Tensor& t : host) in.push_back(t.to(DType::bf16).to(Device::cuda));
  CHECK_THROWS_WITH_AS(mlp_memory(in[0], in[1], in[2], {in[3], in[4], in[5]}, {in[6], in[7], Tensor(), Tensor()}),
                       doctest::Contains("mlp_memory: initial W1 is bf16; with bf16 inputs on cuda the states are f32"),
                       Error);
}
