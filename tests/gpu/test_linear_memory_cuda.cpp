// The CUDA linear memory beyond the op table's comparisons with the CPU: the model's head widths
// (d = e = 64 at chunk 16, the workspace in shared memory; d = e = 128 at chunk 64, in global
// memory) against the CPU, bit-identical results from run to run and whichever memory holds the
// workspace, and a long sequence at the largest inner learning rate staying finite in bf16.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "framework/op_cases/op_case.h"
#include "framework/ops.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_compare.h"
#include "gpu/gpu_guard.h"
#include "gpu/op_parity.h"
#include "gpu/smem_cap.h"

using namespace eat;
using namespace eat::test;

namespace {

// q, k (|k| about 1), v, the three logits (theta's shifted by theta_shift) and a shared initial W
// [H, d, e], as host f32 tensors in the order of the op table's "linear_memory" row.
std::vector<Tensor> host_inputs(Generator& gen, int64_t B, int64_t T, int64_t H, int64_t d, int64_t e,
                                double theta_shift = 0.0) {
  const double qk = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<Tensor> in{random_host({B, T, H, d}, gen, qk), random_host({B, T, H, d}, gen, qk),
                         random_host({B, T, H, e}, gen),     random_host({B, T, H}, gen),
                         random_host({B, T, H}, gen),        random_host({B, T, H}, gen),
                         random_host({H, d, e}, gen, 0.3)};
  std::vector<double> th = in[3].to_f64_vector();
  for (double& x : th) x += theta_shift;
  in[3] = Tensor::from_vector<double>(th, in[3].shape()).to(DType::f32);
  return in;
}

// y and both final states, then every input gradient, after a backward of fixed weights.
std::vector<double> outputs_and_grads(const std::vector<Tensor>& host, DType dtype) {
  std::vector<Tensor> in;
  for (const Tensor& h : host) in.push_back(to_device(h, dtype).requires_grad_());
  LinearMemoryResult r = linear_memory(in[0], in[1], in[2], {in[3], in[4], in[5]}, {cast(in[6], DType::f32), Tensor()});
  Generator gen(7);
  auto weighted = [&](const Tensor& x) {
    return sum(mul(cast(x, DType::f32), to_device(random_host(x.shape(), gen), DType::f32)));
  };
  add(add(weighted(r.y), weighted(r.state.w)), weighted(r.state.s)).backward();
  std::vector<double> all;
  for (const Tensor& t : {r.y, r.state.w, r.state.s}) {
    std::vector<double> x = t.detach().to_f64_vector();
    all.insert(all.end(), x.begin(), x.end());
  }
  for (const Tensor& t : in) {
    std::vector<double> x = t.grad().to_f64_vector();
    all.insert(all.end(), x.begin(), x.end());
  }
  return all;
}

}  // namespace

TEST_CASE("cuda linear_memory: the model's head widths against the CPU kernel (f32, bf16)") {
  test::require_gpu();
  Generator gen(401);
  const op_cases::OpCase& row = op_cases::find("linear_memory");  // chunk 16
  for (int64_t d : {64, 128})
    for (DType dtype : {DType::f32, DType::bf16}) {
      CAPTURE(d);
      CAPTURE(dtype_name(dtype));
      check_op_on_device(row.call, host_inputs(gen, 2, 150, 2, d, d), dtype,
                         dtype == DType::bf16 ? row.tol.cuda_bf16 : row.tol.cuda_f32, gen, row.name);
    }
}

TEST_CASE("cuda linear_memory: bit-identical from run to run, with the workspace in shared or in global memory") {
  test::require_gpu();
  Generator gen(402);
  const std::vector<Tensor> host = host_inputs(gen, 2, 200, 2, 64, 64);
  for (DType dtype : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    const std::vector<double> first = outputs_and_grads(host, dtype);
    CHECK(outputs_and_grads(host, dtype) == first);
    SmemCap cap(16 * 1024);  // below both kernels' workspaces (49 KiB and 110 KiB)
    CHECK(outputs_and_grads(host, dtype) == first);
  }
}

TEST_CASE("cuda linear_memory: 16K tokens at theta = max_lr stay finite (bf16)") {
  test::require_gpu();
  Generator gen(403);
  std::vector<Tensor> host = host_inputs(gen, 1, 16384, 2, 64, 64, 20.0);
  for (int i : {0, 1}) host[i] = l2_normalize(host[i], 1e-6);
  bool finite = true;
  for (double x : outputs_and_grads(host, DType::bf16)) finite = finite && std::isfinite(x);
  CHECK(finite);
}
