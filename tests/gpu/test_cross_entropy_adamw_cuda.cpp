// CUDA cross-entropy and AdamW against their CPU kernels: kernel level with NaN-poisoned outputs,
// and through cross_entropy() (all positions ignored; the rest in test_op_table_cuda.cpp) and
// AdamW::step().
#include <doctest/doctest.h>

#include <vector>

#include "framework/ops.h"
#include "framework/optim/adamw.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_guard.h"
#include "kernels/adamw.h"
#include "kernels/cross_entropy.h"

using namespace eat;
using namespace eat::test;

namespace {

// Targets in [0, V) with every fifth position ignored (-100).
std::vector<int64_t> random_targets(int64_t n, int64_t V, Generator& gen) {
  std::vector<int64_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = i % 5 == 2 ? -100 : static_cast<int64_t>(gen.next_u64() % V);
  return t;
}

}  // namespace

TEST_CASE("gpu cross-entropy kernels match the CPU kernels (poisoned outputs)") {
  test::require_gpu();
  Generator gen(41);
  for_cuda_dtypes([&]<typename T>(DType dt) {
    for (int64_t V : {129, 1000, 4097}) {
      CAPTURE(V);
      const int64_t N = 37;
      std::vector<int64_t> targets = random_targets(N, V, gen);
      Tensor tdev = Tensor::from_vector<int64_t>(targets, {N}).to(Device::cuda);
      Tensor x = random_host({N, V}, gen, 4.0), rx = rounded(x, dt), dx_in = to_device(x, dt);
      Tensor lse = poisoned_device({N}, DType::f32), row_loss = poisoned_device({N}, DType::f32);
      Tensor loss = poisoned_device({1}, dt), lse_ref = Tensor::empty({N}, DType::f64);
      int64_t count = 0;
      const double total =
          cpu::cross_entropy_forward<float>(rx.data<float>(), targets.data(), lse_ref.data<double>(), N, V, -100, &count);
      REQUIRE(count == N - 7);  // positions 2, 7, ..., 32 are ignored
      const double inv_count = 1.0 / static_cast<double>(count);
      cuda::cross_entropy_forward<T>(dx_in.data<T>(), tdev.data<int64_t>(), lse.data<float>(), row_loss.data<float>(), N, V,
                                     -100, static_cast<float>(inv_count), loss.data<T>());
      check_close(lse, lse_ref, DType::f32, "cross_entropy_forward lse");
      check_close(loss, Tensor::full({1}, total * inv_count), dt, "cross_entropy_forward loss");

      Tensor dloss = to_device(Tensor::full({1}, 0.75), dt), d = poisoned_device({N, V}, dt), dref = Tensor::empty({N, V});
      cuda::cross_entropy_backward<T>(dx_in.data<T>(), tdev.data<int64_t>(), lse.data<float>(), dloss.data<T>(),
                                      static_cast<float>(inv_count), d.data<T>(), N, V, -100);
      cpu::cross_entropy_backward<float>(rx.data<float>(), targets.data(), lse_ref.data<double>(), 0.75 * inv_count,
                                         dref.data<float>(), N, V, -100);
      check_close(d, dref, dt, "cross_entropy_backward");
    }
  });
}

TEST_CASE("gpu cross_entropy through the framework: every position ignored") {
  // Loss and gradient on random targets: test_op_table_cuda.cpp.
  test::require_gpu();
  Generator gen(42);
  for_cuda_dtypes([&]<typename T>(DType dt) {
    const int64_t V = 1000;
    // Every position ignored: loss 0 and a zero gradient, as on the CPU.
    Tensor none = Tensor::from_vector<int64_t>(std::vector<int64_t>(37, -100), {37});
    Tensor logits = to_device(random_host({37, V}, gen), dt);
    logits.requires_grad_();
    Tensor loss = cross_entropy(logits, none);
    loss.backward(to_device(Tensor::full({1}, 1.0), dt));
    cuda::sync_compute();
    CHECK(loss.device() == Device::cuda);
    CHECK(loss.item() == 0.0);
    for (double v : logits.grad().to_f64_vector()) REQUIRE(v == 0.0);
  });
}

TEST_CASE("gpu AdamW update matches the CPU update over several steps (f32 moments)") {
  test::require_gpu();
  Generator gen(43);
  for_cuda_dtypes([&]<typename T>(DType dt) {
    for (bool with_master : {false, true}) {
      CAPTURE(with_master);
      const int64_t n = 4097;
      Tensor p = random_host({n}, gen), rp = rounded(p, dt);
      Tensor m_ref = Tensor::zeros({n}), v_ref = Tensor::zeros({n});
      Tensor pd = to_device(p, dt), md = Tensor::zeros({n}, DType::f32, Device::cuda),
             vd = Tensor::zeros({n}, DType::f32, Device::cuda);
      Tensor master = with_master ? rp.to(Device::cuda) : Tensor();
      for (int64_t t = 1; t <= 3; ++t) {
        CAPTURE(t);
        const AdamWStep step{1e-2, 0.9, 0.95, 1e-8, 0.1, t};
        Tensor g = random_host({n}, gen), rg = rounded(g, dt);
        cpu::adamw_update<float>(rp.data<float>(), rg.data<float>(), m_ref.data<float>(), v_ref.data<float>(), n, step);
        cuda::adamw_update<T>(pd.data<T>(), to_device(g, dt).data<T>(), md.data<float>(), vd.data<float>(),
                              with_master ? master.data<float>() : nullptr, n, step);
        check_close(md, m_ref, DType::f32, "adamw m");
        check_close(vd, v_ref, DType::f32, "adamw v");
        // The bf16 parameter without a master copy is re-rounded each step: compare at bf16's tolerance.
        check_close(pd, rp, dt, "adamw param");
        if (with_master) check_close(master, rp, DType::f32, "adamw master");
        if (!with_master && dt == DType::bf16) rp = rounded(rp, dt);  // the CPU reference follows the same rounding
      }
    }
  });
}

TEST_CASE("gpu AdamW::step and clip_grad_norm through the framework") {
  test::require_gpu();
  Generator gen(44);
  Tensor w_host = random_host({37, 129}, gen), g_host = random_host({37, 129}, gen, 5.0);
  auto run = [&](Device device) {
    Tensor w = w_host.to(device);
    w.requires_grad_();
    w.set_grad(g_host.to(device));
    std::vector<Parameter> params{{"w", w, ParamKind::weight}};
    const double norm = clip_grad_norm(params, 1.0);
    AdamW opt(params, AdamWConfig{});
    opt.step(1e-2);
    opt.step(1e-2);
    return std::pair<Tensor, double>{w, norm};
  };
  auto [w_cpu, norm_cpu] = run(Device::cpu);
  auto [w_dev, norm_dev] = run(Device::cuda);
  CHECK(std::abs(norm_dev - norm_cpu) <= 1e-5 * norm_cpu);
  CHECK(norm_cpu > 1.0);  // the clip did scale the gradient
  check_close(w_dev, w_cpu, DType::f32, "AdamW::step after clip_grad_norm");
}
