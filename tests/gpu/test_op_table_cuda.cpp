// Every row of the op table (framework/op_cases/) that has CUDA kernels, through the framework on
// the device against the same op on the CPU: the output and the gradient of every input, in f32
// and in bf16 (the CPU runs f32 on the same bf16-rounded inputs), at the row's tolerances (1e-5
// and 1e-2 unless the row says otherwise). The allocator's cache is filled with NaN blocks first,
// so an output or gradient element the device never writes fails the comparison.
#include <doctest/doctest.h>

#include "framework/op_cases/op_case.h"
#include "gpu/gpu_check.h"
#include "gpu/gpu_guard.h"

using namespace eat;
using namespace eat::test;

namespace {

// A device result in the inputs' dtype, within tol of the CPU's.
void check_device_result(const Tensor& got, const Tensor& want, DType dtype, double tol, const std::string& what) {
  check_close(got, want, dtype, what, tol);
  CHECK_MESSAGE(got.dtype() == dtype, what, ": result is ", dtype_name(got.dtype()));
}

void check_row(const op_cases::OpCase& row, const std::vector<Tensor>& host, DType dtype, Generator& gen) {
  const double tol = dtype == DType::bf16 ? row.tol.cuda_bf16 : row.tol.cuda_f32;
  std::vector<Tensor> on_cpu, on_dev;
  for (const Tensor& h : host) on_cpu.push_back(rounded(h, dtype).requires_grad_());
  Tensor y_cpu = row.call(on_cpu);
  const Tensor seed = random_host(y_cpu.shape(), gen);
  y_cpu.backward(rounded(seed, dtype));

  std::vector<Shape> shapes = op_cases::shapes_of(host);
  shapes.push_back(y_cpu.shape());
  poison_allocator_cache(shapes, dtype, static_cast<int>(host.size()) + 2);
  for (const Tensor& h : host) on_dev.push_back(to_device(h, dtype).requires_grad_());
  Tensor y_dev = row.call(on_dev);
  y_dev.backward(to_device(seed, dtype));
  check_device_result(y_dev, y_cpu, dtype, tol, row.name + " forward");
  for (size_t i = 0; i < host.size(); ++i)
    check_device_result(on_dev[i].grad(), on_cpu[i].grad(), dtype, tol, row.name + " gradient of input " + std::to_string(i));
}

}  // namespace

TEST_CASE("op table on CUDA: every row's forward and input gradients match the CPU kernels (f32, bf16, poisoned)") {
  test::require_gpu();
  Generator gen(301);
  int rows = 0;
  for (const op_cases::OpCase& row : op_cases::all()) {
    if (!row.cuda) continue;
    ++rows;
    for (const op_cases::Sizes& s : row.medium)
      for (DType dtype : {DType::f32, DType::bf16}) {
        CAPTURE(row.name);
        CAPTURE(op_cases::describe(s));
        CAPTURE(dtype_name(dtype));
        check_row(row, op_cases::draw(s, gen, DType::f32), dtype, gen);
      }
  }
  CHECK(rows + 1 == static_cast<int>(op_cases::all().size()));  // all but the naive attention reference
}
