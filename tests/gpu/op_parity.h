#pragma once
// An op through the framework on the device against the same op on the CPU: the output and the
// gradient of every input, in f32 or bf16 (the CPU runs f32 on the same dtype-rounded inputs). The
// allocator's cache is filled with NaN blocks first, so an output or gradient element the device
// never writes fails the comparison.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "framework/op_cases/op_case.h"
#include "gpu/gpu_check.h"

namespace eat::test {

// A device result in the inputs' dtype, within tol of the CPU's.
inline void check_device_result(const Tensor& got, const Tensor& want, DType dtype, double tol, const std::string& what) {
  check_close(got, want, dtype, what, tol);
  CHECK_MESSAGE(got.dtype() == dtype, what, ": result is ", dtype_name(got.dtype()));
}

// call on `host` (f32 values) rounded to dtype, on the CPU in f32 and on the device in dtype; the
// backward seed is random.
inline void check_op_on_device(const op_cases::Call& call, const std::vector<Tensor>& host, DType dtype, double tol,
                               Generator& gen, const std::string& name) {
  std::vector<Tensor> on_cpu, on_dev;
  for (const Tensor& h : host) on_cpu.push_back(rounded(h, dtype).requires_grad_());
  Tensor y_cpu = call(on_cpu);
  const Tensor seed = random_host(y_cpu.shape(), gen);
  y_cpu.backward(rounded(seed, dtype));

  std::vector<Shape> shapes = op_cases::shapes_of(host);
  shapes.push_back(y_cpu.shape());
  poison_allocator_cache(shapes, dtype, static_cast<int>(host.size()) + 2);
  for (const Tensor& h : host) on_dev.push_back(to_device(h, dtype).requires_grad_());
  Tensor y_dev = call(on_dev);
  y_dev.backward(to_device(seed, dtype));
  check_device_result(y_dev, y_cpu, dtype, tol, name + " forward");
  for (size_t i = 0; i < host.size(); ++i)
    check_device_result(on_dev[i].grad(), on_cpu[i].grad(), dtype, tol, name + " gradient of input " + std::to_string(i));
}

}  // namespace eat::test
