// The CUDA chunk-reset gated scan beyond the op table's comparisons with the CPU (sequences of
// at most 50 tokens, every gradient wanted): long sequences (one chunk of 3000 tokens, whose
// backward keeps dtot in scratch, and chunk 16 with a phase, in registers), each subset of the
// gradients (the kernel skips the unwanted ones), bit-identical results from run to run, T = 0.
#include <doctest/doctest.h>

#include <vector>

#include "framework/ops.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_compare.h"
#include "gpu/gpu_guard.h"

using namespace eat;
using namespace eat::test;

namespace {

struct ScanInputs {
  Tensor x, logit, initial, dh;  // host f32, already rounded through the dtype under test
};

ScanInputs draw_inputs(int64_t B, int64_t T, int64_t C, Generator& gen, DType dtype) {
  return {random_rounded({B, T, C}, gen, dtype), random_rounded({B, T, C}, gen, dtype, 2.0),
          random_rounded({B, C}, gen, dtype), random_rounded({B, T, C}, gen, dtype)};
}

// h, then the gradients of x, gate_logit and initial (undefined where the bit of `wanted` is
// clear), computed on `device` in `dtype`.
std::vector<Tensor> run_scan(const ScanInputs& in, int64_t chunk, int64_t phase, Device device, DType dtype,
                             int wanted = 7) {
  std::vector<Tensor> leaves;
  for (const Tensor& t : {in.x, in.logit, in.initial}) {
    Tensor l = t.to(dtype).to(device);
    if (wanted >> leaves.size() & 1) l.requires_grad_();
    leaves.push_back(l);
  }
  Tensor h = chunk_scan(leaves[0], leaves[1], chunk, leaves[2], phase);
  sum(mul(h, in.dh.to(dtype).to(device))).backward();
  std::vector<Tensor> out{h.detach()};
  for (const Tensor& l : leaves) out.push_back(l.requires_grad() ? l.grad() : Tensor());
  return out;
}

const char* kNames[] = {"h", "dx", "dgate_logit", "dinitial"};

}  // namespace

TEST_CASE("cuda chunk_scan: long sequences and every subset of the gradients against the CPU") {
  require_gpu();
  Generator gen(401);
  struct Case {
    int64_t B, T, C, chunk, phase;
  };
  for (const Case& c : {Case{2, 3000, 70, 4096, 0}, Case{3, 1000, 257, 16, 21}})
    for (DType dtype : {DType::f32, DType::bf16}) {
      CAPTURE(c.T);
      CAPTURE(c.chunk);
      const ScanInputs in = draw_inputs(c.B, c.T, c.C, gen, dtype);
      const std::vector<Tensor> cpu = run_scan(in, c.chunk, c.phase, Device::cpu, DType::f32);
      for (int wanted = 1; wanted <= 7; ++wanted) {
        CAPTURE(wanted);
        poison_allocator_cache({{c.B, c.T, c.C}, {c.B, c.C}}, dtype);
        const std::vector<Tensor> device = run_scan(in, c.chunk, c.phase, Device::cuda, dtype, wanted);
        for (int k = 0; k < 4; ++k)
          if (k == 0 || (wanted >> (k - 1) & 1)) check_close(device[k], cpu[k], dtype, kNames[k]);
      }
    }
}

TEST_CASE("cuda chunk_scan: bit-identical outputs and gradients from run to run") {
  require_gpu();
  Generator gen(402);
  for (DType dtype : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    const ScanInputs in = draw_inputs(2, 300, 96, gen, dtype);
    auto values = [&] {
      std::vector<double> all;
      for (const Tensor& t : run_scan(in, 16, 5, Device::cuda, dtype)) {
        const std::vector<double> v = t.to_f64_vector();
        all.insert(all.end(), v.begin(), v.end());
      }
      return all;
    };
    CHECK(values() == values());
  }
}

TEST_CASE("cuda chunk_scan: an empty sequence gives an empty output and a zero initial gradient") {
  require_gpu();
  Generator gen(403);
  for (DType dtype : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    poison_allocator_cache({{2, 3}}, dtype);
    const std::vector<Tensor> out = run_scan(draw_inputs(2, 0, 3, gen, dtype), 4, 1, Device::cuda, dtype);
    CHECK(out[0].shape() == Shape{2, 0, 3});
    REQUIRE(out[3].defined());
    for (double v : out[3].to_f64_vector()) CHECK(v == 0);
  }
}
