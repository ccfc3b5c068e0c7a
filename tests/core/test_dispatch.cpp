// EAT_KERNEL: one call runs the kernel that a family header declares for both backends, in the
// element type of the tensor it is given, and names the op when that type has no kernel. The
// helpers beside it pass optional tensors and per-row statistics through that one call.
#include <doctest/doctest.h>

#include <vector>

#include "framework/dispatch.h"
#include "framework/ops/row_stats.h"
#include "kernels/elementwise.h"

using namespace eat;

TEST_CASE("EAT_KERNEL runs the CPU kernel in the tensor's element type") {
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    Tensor a = Tensor::full({3}, 1.5, dt), b = Tensor::full({3}, 2.25, dt), y = Tensor::full({3}, -1.0, dt);
    EAT_KERNEL("test add", a, add_forward, a.data<T>(), b.data<T>(), y.data<T>(), a.numel());
    CHECK(y.to_f64_vector() == std::vector<double>{3.75, 3.75, 3.75});
  }
}

TEST_CASE("EAT_KERNEL names the op when the element type has no kernel") {
  Tensor ids = Tensor::from_vector<int64_t>({1, 2}, {2});
  CHECK_THROWS_WITH_AS(EAT_KERNEL("test add", ids, add_forward, ids.data<T>(), ids.data<T>(), ids.data<T>(), 2),
                       "test add: CPU kernels run in f32 or f64, got i64", Error);
}

TEST_CASE("an unwanted gradient is an undefined tensor whose kernel output is null") {
  Tensor like = Tensor::empty({2, 3});
  Tensor wanted = empty_like_if(true, like), unwanted = empty_like_if(false, like);
  REQUIRE(wanted.defined());
  CHECK(wanted.shape() == like.shape());
  CHECK(data_or_null<float>(wanted) == wanted.data<float>());
  CHECK_FALSE(unwanted.defined());
  CHECK(data_or_null<float>(unwanted) == nullptr);
}

TEST_CASE("row statistics reach the CPU kernels as double, and refuse another type") {
  Tensor stats = row_stats(4, Tensor::empty({4, 8}));
  double* as_double = row_stat_data(stats);
  CHECK(as_double == stats.data<double>());
  CHECK_THROWS_WITH_AS(static_cast<float*>(row_stat_data(stats)), "tensor holds f64, accessed as f32", Error);
}
