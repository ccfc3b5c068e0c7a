// linear and matmul beyond the op table's rows (test_op_table.cpp, every transpose and batch form):
// the shape errors.
#include "base/error.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("linear and matmul: shape errors name the op and the shapes") {
  Tensor x = Tensor::zeros({2, 5}), w = Tensor::zeros({4, 6});
  CHECK_THROWS_WITH_AS(linear(x, w), doctest::Contains("linear: input [2, 5] does not end in 6"), Error);
  CHECK_THROWS_WITH_AS(linear(x, Tensor::zeros({4, 5}), Tensor::zeros({3})), doctest::Contains("bias [3]"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})), doctest::Contains("inner dimensions differ"), Error);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 5})), doctest::Contains("batch dimensions differ"), Error);
}
