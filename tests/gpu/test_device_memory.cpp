#include <doctest/doctest.h>

#include "base/random.h"
#include "framework/tensor.h"
#include "gpu/gpu_guard.h"

using namespace eat;

TEST_CASE("tensors round-trip through device memory unchanged") {
  test::require_gpu();
  Generator gen(1);
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor host = Tensor::randn({3, 257}, gen, 1.0, dt);
    Tensor dev = host.to(Device::cuda);
    CHECK(dev.device() == Device::cuda);
    Tensor back = dev.to(Device::cpu);
    CHECK(back.to_f64_vector() == host.to_f64_vector());
    Tensor z = Tensor::zeros({5}, dt, Device::cuda);
    for (double v : z.to_f64_vector()) CHECK(v == 0.0);
  }
}
