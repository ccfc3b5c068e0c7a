// Every row of the op table (framework/op_cases/) that has CUDA kernels, through the framework on
// the device against the same op on the CPU (op_parity.h: output and every input's gradient, f32
// and bf16, NaN-poisoned), at the row's tolerances (1e-5 and 1e-2 unless the row says otherwise).
#include <doctest/doctest.h>

#include "framework/op_cases/op_case.h"
#include "gpu/gpu_guard.h"
#include "gpu/op_parity.h"

using namespace eat;
using namespace eat::test;

namespace {

void check_row(const op_cases::OpCase& row, const std::vector<Tensor>& host, DType dtype, Generator& gen) {
  check_op_on_device(row.call, host, dtype, dtype == DType::bf16 ? row.tol.cuda_bf16 : row.tol.cuda_f32, gen, row.name);
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
