// CUDA embedding, RoPE and short convolution against their CPU kernels at kernel level, with
// NaN-poisoned outputs (the Tensor-level ops: test_op_table_cuda.cpp).
#include <doctest/doctest.h>

#include <utility>
#include <vector>

#include "framework/ops.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_guard.h"
#include "kernels/embedding.h"
#include "kernels/rope.h"
#include "kernels/short_conv.h"

using namespace eat;
using namespace eat::test;

namespace {

// n ids in [0, vocab) with repeats (so the backward sums several rows into one) and unused ids.
std::vector<int64_t> random_ids(int64_t n, int64_t vocab, Generator& gen) {
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(vocab / 2 + 1)) * 2 % vocab;
  return ids;
}

}  // namespace

TEST_CASE("gpu embedding kernels match the CPU kernels (poisoned outputs)") {
  test::require_gpu();
  Generator gen(31);
  for_cuda_dtypes([&]<typename T>(DType dt) {
    for (int64_t dim : {129, 1000}) {
      CAPTURE(dim);
      const int64_t vocab = 53, n = 37 * 3;
      std::vector<int64_t> ids = random_ids(n, vocab, gen);
      Tensor ids_dev = Tensor::from_vector<int64_t>(ids, {n}).to(Device::cuda);
      Tensor w = random_host({vocab, dim}, gen), g = random_host({n, dim}, gen);
      Tensor rw = rounded(w, dt), rg = rounded(g, dt);
      Tensor y = poisoned_device({n, dim}, dt), ref = Tensor::empty({n, dim});
      cuda::embedding_forward<T>(ids_dev.data<int64_t>(), to_device(w, dt).data<T>(), y.data<T>(), n, dim);
      cpu::embedding_forward<float>(ids.data(), rw.data<float>(), ref.data<float>(), n, dim);
      check_close(y, ref, dt, "embedding_forward");

      Tensor offsets = Tensor::empty({vocab + 1}, DType::i64), order = Tensor::empty({n}, DType::i64);
      cuda::group_by_id(ids.data(), n, vocab, offsets.data<int64_t>(), order.data<int64_t>());
      Tensor dw = poisoned_device({vocab, dim}, dt), dwref = Tensor::empty({vocab, dim});
      cuda::embedding_backward<T>(offsets.to(Device::cuda).data<int64_t>(), order.to(Device::cuda).data<int64_t>(),
                                  to_device(g, dt).data<T>(), dw.data<T>(), vocab, dim);
      cpu::embedding_backward<float>(ids.data(), rg.data<float>(), dwref.data<float>(), n, vocab, dim);
      check_close(dw, dwref, dt, "embedding_backward");
      if (dt == DType::f32) {  // same sums in the same token order: the same bits as the CPU
        CHECK(dw.to_f64_vector() == dwref.to_f64_vector());
      }
    }
  });
}

TEST_CASE("gpu rope kernel matches the CPU kernel, forward and inverse, large offsets, chunk positions (poisoned outputs)") {
  test::require_gpu();
  Generator gen(32);
  for_cuda_dtypes([&]<typename T>(DType dt) {
    for (auto [offset, chunk] : {std::pair<int64_t, int64_t>{0, 1}, {1000003, 1}, {1000003, 16}}) {
      for (bool inverse : {false, true}) {
        CAPTURE(offset);
        CAPTURE(chunk);
        CAPTURE(inverse);
        const int64_t B = 2, T_ = 37, H = 3, d = 130;
        Tensor x = random_host({B, T_, H, d}, gen), rx = rounded(x, dt), ref = Tensor::empty({B, T_, H, d});
        Tensor y = poisoned_device({B, T_, H, d}, dt);
        cuda::rope_apply<T>(to_device(x, dt).data<T>(), y.data<T>(), B, T_, H, d, 10000.0, offset, chunk, inverse);
        cpu::rope_apply<float>(rx.data<float>(), ref.data<float>(), B, T_, H, d, 10000.0, offset, chunk, inverse);
        check_close(y, ref, dt, "rope_apply");
      }
    }
  });
}

TEST_CASE("gpu short_conv kernels match the CPU kernels, weight and bias gradients included (poisoned outputs)") {
  test::require_gpu();
  Generator gen(33);
  for_cuda_dtypes([&]<typename T>(DType dt) {
    for (int64_t k : {1, 4, 40}) {  // k = 40 is longer than T: early taps read nothing
      for (int64_t C : {129, 1000}) {
        CAPTURE(k);
        CAPTURE(C);
        const int64_t B = 3, T_ = 37;
        const Shape shape{B, T_, C};
        Tensor x = random_host(shape, gen), w = random_host({C, k}, gen), b = random_host({C}, gen),
               g = random_host(shape, gen);
        Tensor rx = rounded(x, dt), rw = rounded(w, dt), rb = rounded(b, dt), rg = rounded(g, dt);
        Tensor dxin = to_device(x, dt), dwin = to_device(w, dt), dbin = to_device(b, dt), dg = to_device(g, dt);
        Tensor y = poisoned_device(shape, dt), ref = Tensor::empty(shape);
        cuda::short_conv_forward<T>(dxin.data<T>(), dwin.data<T>(), dbin.data<T>(), y.data<T>(), B, T_, C, k);
        cpu::short_conv_forward<float>(rx.data<float>(), rw.data<float>(), rb.data<float>(), ref.data<float>(), B, T_, C, k);
        check_close(y, ref, dt, "short_conv_forward");

        Tensor dx = poisoned_device(shape, dt), dw = poisoned_device({C, k}, dt), db = poisoned_device({C}, dt);
        cuda::short_conv_backward<T>(dxin.data<T>(), dwin.data<T>(), dg.data<T>(), dx.data<T>(), dw.data<T>(), db.data<T>(),
                                     B, T_, C, k);
        Tensor dwref = Tensor::empty({C, k}), dbref = Tensor::empty({C});
        cpu::short_conv_backward<float>(rx.data<float>(), rw.data<float>(), rg.data<float>(), ref.data<float>(),
                                        dwref.data<float>(), dbref.data<float>(), B, T_, C, k);
        check_close(dx, ref, dt, "short_conv_backward dx");
        check_close(dw, dwref, dt, "short_conv_backward dw");
        check_close(db, dbref, dt, "short_conv_backward dbias");
      }
    }
  });
}
