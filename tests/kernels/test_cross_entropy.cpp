// cross_entropy beyond the op table's row (test_op_table.cpp: the definition with ignored
// positions, gradients, f32): i32 targets, every position ignored, bad targets named.
#include "base/error.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("cross_entropy: i32 targets, every position ignored, bad targets") {
  Generator gen(4);
  const int64_t N = 6, V = 13;
  Tensor logits = randn64({N, V}, gen, 3.0, false);
  Tensor t3 = Tensor::from_vector<int32_t>({1, 2, 0, 3, 3, 1}, {2, 3});
  CHECK(gradcheck("cross_entropy 3d", [&](auto& in) { return cross_entropy(in[0], t3); }, {randn64({2, 3, 4}, gen)}) <= 1.0);
  // Every position ignored: loss 0 and gradient 0, not NaN.
  Tensor none = Tensor::from_vector<int64_t>({-100, -100}, {2});
  Tensor l2 = randn64({2, V}, gen);
  Tensor loss = cross_entropy(l2, none);
  CHECK(loss.item() == 0.0);
  loss.backward();
  for (double g : l2.grad().to_f64_vector()) CHECK(g == 0.0);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, Tensor::from_vector<int64_t>({1, 2, 13, 0, 0, 0}, {N})),
                       doctest::Contains("cross_entropy: target 13 at position 2 is outside [0, 13)"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(logits, Tensor::from_vector<int64_t>({1, 2}, {2})),
                       doctest::Contains("targets [2] do not match logits [6, 13]"), Error);
}
