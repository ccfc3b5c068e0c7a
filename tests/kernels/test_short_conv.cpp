// short_conv beyond the op table's rows (test_op_table.cpp: the sum, gradients with and without
// bias for taps from 1 to past the sequence start, f32): bad shapes named.
#include "base/error.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("short_conv: a weight or bias of the wrong shape is named") {
  Generator gen(3);
  Tensor x = randn64({1, 4, 3}, gen);
  CHECK_THROWS_WITH_AS(short_conv(x, randn64({4, 3}, gen)), doctest::Contains("short_conv: weight [4, 3] must be [C, k] with C = 3"),
                       Error);
  CHECK_THROWS_WITH_AS(short_conv(x, randn64({3, 2}, gen), randn64({2}, gen)), doctest::Contains("bias [2] must be [3]"), Error);
}
