// split_last beyond the op table's row (framework/op_cases/joins.cpp): parts of width zero, and
// parts whose gradient never arrives, at a size that spreads the rows over the threads.
#include "framework/ops/joins.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("split_last: empty parts, and the columns of a part without a gradient come back zero") {
  Generator gen(8);
  for (int64_t rows : {3, 3000}) {  // 3000 x 7 doubles: past the threads' threshold
    CAPTURE(rows);
    Tensor x = randn64({rows, 7}, gen);
    const std::vector<Tensor> parts = split_last(x, {2, 0, 4, 1});
    REQUIRE(parts.size() == 4);
    CHECK(parts[1].shape() == Shape{rows, 0});
    const std::vector<double> xv = x.to_f64_vector();
    const int64_t first[4] = {0, 2, 2, 6}, width[4] = {2, 0, 4, 1};
    for (int p = 0; p < 4; ++p) {
      const std::vector<double> pv = parts[static_cast<size_t>(p)].to_f64_vector();
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < width[p]; ++j) CHECK(pv[static_cast<size_t>(r * width[p] + j)] == xv[static_cast<size_t>(r * 7 + first[p] + j)]);
    }
    // Only parts 0 and 3 reach the loss: d/dx of sum(parts[0]) + 2 sum(parts[3]).
    add(sum(parts[0]), scale(sum(parts[3]), 2.0)).backward();
    const std::vector<double> g = x.grad().to_f64_vector();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < 7; ++j) CHECK(g[static_cast<size_t>(r * 7 + j)] == (j < 2 ? 1.0 : j == 6 ? 2.0 : 0.0));
  }
}
