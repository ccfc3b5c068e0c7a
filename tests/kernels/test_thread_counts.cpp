// Kernels that spread rows or blocks over the threads give bit-identical results for any thread
// count: every reduction runs in an order fixed by the sizes alone. Rows of the op table at sizes
// past the parallel threshold (kernels/cpu/parallel.h), in f32, with 1, 2 and 3 threads: the output
// and every input gradient must match exactly.
#include <omp.h>

#include "framework/op_cases/op_case.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

namespace {

// The output, then each input's gradient, of one forward and backward of `row` on `sizes`.
std::vector<std::vector<double>> run(const op_cases::OpCase& row, const op_cases::Sizes& sizes) {
  Generator gen(7);
  std::vector<Tensor> in = op_cases::draw(sizes, gen, DType::f32);
  for (Tensor& t : in) t.requires_grad_();
  Tensor out = row.call(in);
  out.backward(Tensor::randn(out.shape(), gen, 1.0, DType::f32));
  std::vector<std::vector<double>> values{out.to_f64_vector()};
  for (const Tensor& t : in) values.push_back(t.grad().to_f64_vector());
  return values;
}

}  // namespace

TEST_CASE("row-parallel kernels: the same bits for 1, 2 and 3 threads") {
  using op_cases::normal;
  // Ragged against every block: 300 rows (64-row blocks of the norms' weight gradient), 2085
  // logits (1024-logit blocks of cross_entropy), 1100-wide halves (1024-value pointwise blocks).
  const std::vector<std::pair<std::string, op_cases::Sizes>> cases = {
      {"rms_norm", {normal({300, 200}), normal({200})}},
      {"simple_rms_norm", {normal({300, 200})}},
      {"cross_entropy", {normal({40, 2085}, 2.0)}},
      {"glu_gate_halves silu", {normal({40, 2200}, 2.0)}},
      {"glu_gate_halves none", {normal({40, 2200})}},
      // The packed GEMM's path, which makes the gate (and in the backward its gradient) on each
      // tile of rows as it finishes them.
      {"gated_mlp silu", {normal({300, 200}), normal({1100, 200}, 0.1), normal({200, 550}, 0.1)}},
      {"split_last", {normal({300, 301})}},
      {"silu", {normal({300, 200}, 3.0)}},
      {"rope", {normal({2, 300, 3, 40})}},
  };
  const int threads_before = omp_get_max_threads();
  for (const auto& [name, sizes] : cases) {
    CAPTURE(name);
    std::vector<std::vector<std::vector<double>>> by_threads;
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      by_threads.push_back(run(op_cases::find(name), sizes));
    }
    CHECK(by_threads[1] == by_threads[0]);
    CHECK(by_threads[2] == by_threads[0]);
  }
  omp_set_num_threads(threads_before);
}
