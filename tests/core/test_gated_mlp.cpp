// gated_mlp beyond the op table's rows (framework/op_cases/joins.cpp): the bits of the ops it
// stands for, forward and every gradient, on the packed GEMM's path (which makes the gate on the
// projection's finished rows, and the gate's gradient on the down projection's finished input
// gradient), on 1, 2 and 3 threads.
#include <omp.h>

#include "framework/ops.h"
#include "framework/ops/joins.h"
#include "gradcheck.h"

using namespace eat;

TEST_CASE("gated_mlp: the bits of linear, glu_gate_halves and linear onto the residual, forward and backward") {
  // 2 x 70 tokens of 128 into halves of 83 and back to 128, in f32 (every product large enough
  // for the packed GEMM); x also feeds the residual (its gradient is a sum of two). With and
  // without weight gradients for the gate and up projection.
  Generator gen(42);
  const Tensor x0 = Tensor::randn({2, 70, 128}, gen, 1.0, DType::f32), up0 = Tensor::randn({166, 128}, gen, 0.2),
               down0 = Tensor::randn({128, 83}, gen, 0.2), g = Tensor::randn({2, 70, 128}, gen);
  const int threads_before = omp_get_max_threads();
  for (GateActivation act : {GateActivation::silu, GateActivation::none})
    for (bool train_up : {true, false})
      for (int threads : {1, 2, 3}) {
        CAPTURE(act == GateActivation::silu);
        CAPTURE(train_up);
        CAPTURE(threads);
        omp_set_num_threads(threads);
        std::vector<std::vector<double>> results[2];
        for (bool fused : {true, false}) {
          Tensor leaf = x0.clone().requires_grad_(), up = up0.clone(), down = down0.clone().requires_grad_();
          if (train_up) up.requires_grad_();
          const Tensor x = scale(leaf, 1.0);
          const Tensor y = fused ? gated_mlp(x, up, down, x, act)
                                 : linear(glu_gate_halves(linear(x, up), act), down, Tensor(), x);
          sum(mul(y, g)).backward();
          results[fused ? 0 : 1] = {y.to_f64_vector(), leaf.grad().to_f64_vector(), down.grad().to_f64_vector(),
                                    train_up ? up.grad().to_f64_vector() : std::vector<double>()};
        }
        CHECK(results[0] == results[1]);
      }
  omp_set_num_threads(threads_before);
  CHECK_THROWS_WITH_AS(gated_mlp(x0, Tensor::zeros({165, 128}), down0, Tensor(), GateActivation::silu),
                       doctest::Contains("even number of rows"), Error);
  CHECK_THROWS_WITH_AS(gated_mlp(x0, up0, Tensor::zeros({128, 82}), Tensor(), GateActivation::silu),
                       doctest::Contains("gated_mlp"), Error);
}
