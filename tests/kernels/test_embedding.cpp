// embedding beyond the op table's row (test_op_table.cpp): i32 ids, and bad ids named.
#include "base/error.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("embedding: rows by i32 id, bad ids named") {
  Generator gen(1);
  Tensor w = randn64({7, 5}, gen);
  Tensor ids = Tensor::from_vector<int32_t>({3, 0, 3, 6, 3, 1}, {2, 3});
  Tensor y = embedding(ids, w);
  CHECK(y.shape() == Shape{2, 3, 5});
  auto wv = w.to_f64_vector(), yv = y.to_f64_vector();
  for (int j = 0; j < 5; ++j) CHECK(yv[3 * 5 + j] == wv[6 * 5 + j]);
  CHECK(gradcheck("embedding", [&](auto& in) { return embedding(ids, in[0]); }, {w}) <= 1.0);
  CHECK_THROWS_WITH_AS(embedding(Tensor::from_vector<int32_t>({2, 7}, {2}), w),
                       doctest::Contains("embedding: id 7 at position 1 is outside [0, 7)"), Error);
  CHECK_THROWS_WITH_AS(embedding(Tensor::from_vector<double>({1.0}, {1}), w), doctest::Contains("must be i32 or i64"), Error);
}
