// Index arithmetic past 2^31 elements: one bf16 case each for flash attention, the Lightning
// chunked sweep, RMSNorm and cross-entropy on tensors just over 2^31 elements, whose last sampled
// row lies wholly past element 2^31 (a 32-bit offset would wrap there). Only the sampled rows are
// checked, against the CPU kernel run on those rows alone (relative error < 1e-2, the suite's bf16
// tolerance). Each case needs 10 to 61 GiB of device memory (each 4 GiB tensor takes a 5 GiB
// block) and is reported as not run on a smaller GPU: all four run on an 80 GB H100.
#include <doctest/doctest.h>

#include <cmath>
#include <utility>
#include <vector>

#include "gpu/gpu_check.h"
#include "gpu/gpu_guard.h"
#include "gpu/large_tensors.h"
#include "kernels/cpu/attention_tiled.h"
#include "kernels/cpu/lightning_chunked.h"
#include "kernels/cross_entropy.h"
#include "kernels/cuda/attention_flash.h"
#include "kernels/cuda/lightning_chunked.h"
#include "kernels/norms.h"

using namespace eat;
using namespace eat::test;

namespace {

constexpr DType kBf16 = DType::bf16;

// Compares row r of a device result with the CPU's row.
void check_row(const Tensor& device_result, int64_t r, const Tensor& ref, const char* what) {
  CAPTURE(r);
  Tensor got = host_row(device_result, r);
  check_rel_error(got, ref.reshape(got.shape()), kBf16, what);
}

// The rows to check: the first, one in the middle, and the last, which starts at or past element
// 2^31 (row_elems elements a row).
std::vector<int64_t> sampled_rows(int64_t rows, int64_t row_elems) {
  REQUIRE((rows - 1) * row_elems >= kTwoTo31);
  return {0, rows / 2 + 1, rows - 1};
}

}  // namespace

TEST_CASE("past 2^31 elements: bf16 flash attention, forward and backward, on sampled batches") {
  test::require_gpu();
  // q, k, v [B, 128, 1, 128] with B = 2^17 + 1: 2^31 + 2^14 elements each; batch B - 1 starts at 2^31.
  AttentionDims dims;
  dims.batch = (int64_t{1} << 17) + 1;
  dims.seq = 128;
  dims.heads = 1;
  dims.qk_dim = dims.v_dim = 128;
  dims.scale = 1.0 / std::sqrt(128.0);
  const Shape shape{dims.batch, dims.seq, dims.heads, dims.qk_dim};
  if (!device_memory_for(bytes_of(shape, kBf16, 8) + (size_t{1} << 30), "attention past 2^31")) return;
  Generator gen(3101);
  Tensor q = periodic_rows(shape, 7, gen, kBf16), k = periodic_rows(shape, 7, gen, kBf16),
         v = periodic_rows(shape, 7, gen, kBf16), dout = periodic_rows(shape, 7, gen, kBf16);
  const std::vector<int64_t> rows = sampled_rows(dims.batch, dims.seq * dims.heads * dims.qk_dim);
  struct Sampled {
    Tensor q, k, v, dout;
  };
  std::vector<Sampled> inputs;
  for (int64_t b : rows) inputs.push_back({fresh_row(q, b, gen), fresh_row(k, b, gen), fresh_row(v, b, gen), fresh_row(dout, b, gen)});

  Tensor out = Tensor::empty(shape, kBf16, Device::cuda), lse = Tensor::empty({dims.batch, dims.heads, dims.seq}, DType::f32, Device::cuda);
  Tensor dq = Tensor::empty(shape, kBf16, Device::cuda), dk = Tensor::empty(shape, kBf16, Device::cuda),
         dv = Tensor::empty(shape, kBf16, Device::cuda);
  Tensor rowdot = Tensor::empty({dims.batch, dims.heads, dims.seq}, DType::f32, Device::cuda);
  cuda::attention_flash_forward<bf16>(q.data<bf16>(), k.data<bf16>(), v.data<bf16>(), out.data<bf16>(), lse.data<float>(), dims);
  cuda::attention_flash_backward<bf16>(q.data<bf16>(), k.data<bf16>(), v.data<bf16>(), out.data<bf16>(), lse.data<float>(),
                                       dout.data<bf16>(), dq.data<bf16>(), dk.data<bf16>(), dv.data<bf16>(),
                                       rowdot.data<float>(), dims);
  cuda::sync_compute();

  AttentionDims one = dims;
  one.batch = 1;
  for (size_t i = 0; i < rows.size(); ++i) {
    const Sampled& in = inputs[i];
    const Shape s1{1, dims.seq, dims.heads, dims.qk_dim};
    Tensor ro = Tensor::empty(s1), rl = Tensor::empty({1, dims.heads, dims.seq}), rdq = Tensor::empty(s1),
           rdk = Tensor::empty(s1), rdv = Tensor::empty(s1);
    cpu::attention_tiled_forward<float>(in.q.data<float>(), in.k.data<float>(), in.v.data<float>(), ro.data<float>(),
                                        rl.data<float>(), one);
    cpu::attention_tiled_backward<float>(in.q.data<float>(), in.k.data<float>(), in.v.data<float>(), ro.data<float>(),
                                         rl.data<float>(), in.dout.data<float>(), rdq.data<float>(), rdk.data<float>(),
                                         rdv.data<float>(), one);
    check_row(out, rows[i], ro, "out");
    check_row(lse, rows[i], rl, "lse");
    check_row(dq, rows[i], rdq, "dq");
    check_row(dk, rows[i], rdk, "dk");
    check_row(dv, rows[i], rdv, "dv");
  }
}

TEST_CASE("past 2^31 elements: the bf16 Lightning sweep (outputs, states, gradients) on sampled batches") {
  test::require_gpu();
  // q, k, v, states [B, ...] with B = 2^17 + 1 and 2^14 elements a batch: the states [B, 1, 128, 128]
  // pass 2^31 as well as the sequences [B, 128, 1, 128].
  const HeadShape s{(int64_t{1} << 17) + 1, 128, 1, 128, 128};
  const std::vector<double> decay{0.97};
  if (!device_memory_for(bytes_of(s.qk(), kBf16, 12) + (size_t{1} << 30), "Lightning past 2^31")) return;
  Generator gen(3102);
  Tensor q = periodic_rows(s.qk(), 7, gen, kBf16), k = periodic_rows(s.qk(), 7, gen, kBf16),
         v = periodic_rows(s.v(), 7, gen, kBf16), s0 = periodic_rows(s.state(), 7, gen, kBf16),
         dout = periodic_rows(s.v(), 7, gen, kBf16), dfinal = periodic_rows(s.state(), 7, gen, kBf16);
  const std::vector<int64_t> rows = sampled_rows(s.B, s.T * s.H * s.d);
  struct Sampled {
    Tensor q, k, v, s0, dout, dfinal;
  };
  std::vector<Sampled> inputs;
  for (int64_t b : rows)
    inputs.push_back({fresh_row(q, b, gen, 0.5), fresh_row(k, b, gen, 0.5), fresh_row(v, b, gen), fresh_row(s0, b, gen),
                      fresh_row(dout, b, gen), fresh_row(dfinal, b, gen)});  // the scales of test_lightning_cuda.cpp

  auto device = [](const Shape& shape) { return Tensor::empty(shape, kBf16, Device::cuda); };
  Tensor o = device(s.v()), last = device(s.state()), dq = device(s.qk()), dk = device(s.qk()), dv = device(s.v()),
         ds0 = device(s.state());
  cuda::lightning_chunked_forward<bf16>(s, decay.data(), q.data<bf16>(), k.data<bf16>(), v.data<bf16>(), s0.data<bf16>(),
                                        o.data<bf16>(), last.data<bf16>());
  cuda::lightning_chunked_backward<bf16>(s, decay.data(), q.data<bf16>(), k.data<bf16>(), v.data<bf16>(),
                                         s0.data<bf16>(), dout.data<bf16>(), dfinal.data<bf16>(), dq.data<bf16>(),
                                         dk.data<bf16>(), dv.data<bf16>(), ds0.data<bf16>());
  cuda::sync_compute();

  const HeadShape one{1, s.T, s.H, s.d, s.e};
  for (size_t i = 0; i < rows.size(); ++i) {
    const Sampled& in = inputs[i];
    Tensor ro = Tensor::empty(one.v()), rlast = Tensor::empty(one.state()), rdq = Tensor::empty(one.qk()),
           rdk = Tensor::empty(one.qk()), rdv = Tensor::empty(one.v()), rds0 = Tensor::empty(one.state());
    cpu::lightning_chunked_forward<float>(one, 64, decay.data(), in.q.data<float>(), in.k.data<float>(),
                                          in.v.data<float>(), in.s0.data<float>(), ro.data<float>(), rlast.data<float>());
    cpu::lightning_chunked_backward<float>(one, 64, decay.data(), in.q.data<float>(), in.k.data<float>(),
                                           in.v.data<float>(), in.s0.data<float>(), in.dout.data<float>(),
                                           in.dfinal.data<float>(), rdq.data<float>(), rdk.data<float>(),
                                           rdv.data<float>(), rds0.data<float>());
    check_row(o, rows[i], ro, "o");
    check_row(last, rows[i], rlast, "final state");
    check_row(dq, rows[i], rdq, "dq");
    check_row(dk, rows[i], rdk, "dk");
    check_row(dv, rows[i], rdv, "dv");
    check_row(ds0, rows[i], rds0, "ds0");
  }
}

TEST_CASE("past 2^31 elements: bf16 RMSNorm forward and input gradient on sampled rows") {
  test::require_gpu();
  const int64_t cols = 4096, rows_n = (int64_t{1} << 19) + 1;  // 2^31 + 4096 elements; row 2^19 starts at 2^31
  const Shape shape{rows_n, cols};
  if (!device_memory_for(bytes_of(shape, kBf16, 4) + (size_t{1} << 30), "RMSNorm past 2^31")) return;
  Generator gen(3103);
  Tensor x = periodic_rows(shape, 7, gen, kBf16), dy = periodic_rows(shape, 7, gen, kBf16);
  Tensor w_host = random_rounded({cols}, gen, kBf16), w = to_device(w_host, kBf16);
  const std::vector<int64_t> rows = sampled_rows(rows_n, cols);
  std::vector<std::pair<Tensor, Tensor>> inputs;  // x, dy of each sampled row
  for (int64_t r : rows) inputs.emplace_back(fresh_row(x, r, gen), fresh_row(dy, r, gen));

  Tensor y = Tensor::empty(shape, kBf16, Device::cuda), dx = Tensor::empty(shape, kBf16, Device::cuda);
  Tensor rstat = Tensor::empty({rows_n}, DType::f32, Device::cuda);
  cuda::rms_norm_forward<bf16>(x.data<bf16>(), w.data<bf16>(), y.data<bf16>(), rstat.data<float>(), rows_n, cols, 1e-5);
  cuda::rms_norm_backward<bf16>(x.data<bf16>(), w.data<bf16>(), rstat.data<float>(), dy.data<bf16>(), dx.data<bf16>(),
                                nullptr, rows_n, cols, false);
  cuda::sync_compute();
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& [xr, dyr] = inputs[i];
    Tensor ry = Tensor::empty({1, cols}), rdx = Tensor::empty({1, cols}), rdw = Tensor::empty({cols});
    Tensor rr = Tensor::empty({1}, DType::f64);
    cpu::rms_norm_forward<float>(xr.data<float>(), w_host.data<float>(), ry.data<float>(), rr.data<double>(), 1, cols, 1e-5);
    cpu::rms_norm_backward<float>(xr.data<float>(), w_host.data<float>(), rr.data<double>(), dyr.data<float>(),
                                  rdx.data<float>(), rdw.data<float>(), 1, cols, false);
    check_row(y, rows[i], ry, "rms_norm y");
    check_row(rstat, rows[i], rr.to(DType::f32), "rms_norm inverse rms");
    check_row(dx, rows[i], rdx, "rms_norm dx");
  }
}

TEST_CASE("past 2^31 elements: bf16 cross-entropy (log-sum-exp, row loss, gradient) on sampled rows") {
  test::require_gpu();
  const int64_t V = 50257, N = kTwoTo31 / V + 2;  // the last row starts past element 2^31
  const Shape shape{N, V};
  if (!device_memory_for(bytes_of(shape, kBf16, 2) + (size_t{1} << 30), "cross-entropy past 2^31")) return;
  Generator gen(3104);
  Tensor logits = periodic_rows(shape, 7, gen, kBf16);
  std::vector<int64_t> targets(static_cast<size_t>(N));
  for (auto& t : targets) t = static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(V));
  targets[static_cast<size_t>(N - 1)] = V - 1;  // the row's last element, the farthest one
  Tensor targets_dev = Tensor::from_vector<int64_t>(targets, {N}).to(Device::cuda);
  const std::vector<int64_t> rows = sampled_rows(N, V);
  std::vector<Tensor> inputs;
  for (int64_t r : rows) inputs.push_back(fresh_row(logits, r, gen, 4.0));

  const double inv_count = 1.0 / static_cast<double>(N);
  Tensor lse = Tensor::empty({N}, DType::f32, Device::cuda), row_loss = Tensor::empty({N}, DType::f32, Device::cuda);
  Tensor loss = Tensor::empty({1}, kBf16, Device::cuda), dloss = to_device(Tensor::full({1}, 1.0), kBf16);
  Tensor dlogits = Tensor::empty(shape, kBf16, Device::cuda);
  cuda::cross_entropy_forward<bf16>(logits.data<bf16>(), targets_dev.data<int64_t>(), lse.data<float>(),
                                    row_loss.data<float>(), N, V, -100, static_cast<float>(inv_count), loss.data<bf16>());
  cuda::cross_entropy_backward<bf16>(logits.data<bf16>(), targets_dev.data<int64_t>(), lse.data<float>(),
                                     dloss.data<bf16>(), static_cast<float>(inv_count), dlogits.data<bf16>(), N, V, -100);
  cuda::sync_compute();
  CHECK(std::isfinite(loss.item()));
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t r = rows[i];
    const int64_t* target = &targets[static_cast<size_t>(r)];
    Tensor rlse = Tensor::empty({1}, DType::f64), rd = Tensor::empty({1, V});
    int64_t count = 0;
    const double rloss = cpu::cross_entropy_forward<float>(inputs[i].data<float>(), target, rlse.data<double>(), 1, V, -100, &count);
    cpu::cross_entropy_backward<float>(inputs[i].data<float>(), target, rlse.data<double>(), inv_count, rd.data<float>(), 1, V, -100);
    check_row(lse, r, rlse.to(DType::f32), "cross-entropy lse");
    check_row(row_loss, r, Tensor::full({1}, rloss), "cross-entropy row loss");
    check_row(dlogits, r, rd, "cross-entropy dlogits");
  }
}
