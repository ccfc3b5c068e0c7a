// eval's loss by position: log2 buckets of the position in the window whose token-weighted mean
// is the overall loss, each bucket the model's cross-entropy at exactly its positions.
#include <doctest/doctest.h>

#include <cmath>

#include "data/corpus.h"
#include "data/token_file.h"
#include "framework/autograd.h"
#include "framework/ops.h"
#include "framework/train/evaluate.h"
#include "framework/train/placement.h"
#include "bucket_mean.h"
#include "temp_dir.h"
#include "tiny_run.h"

using namespace eat;

namespace {

struct Fixture {
  eat::test::TempDir dir{"by-position"};
  Recipe recipe;
  std::unique_ptr<LanguageModel> model;
  Fixture() {
    data::tokenize_texts({eat::test::synthetic_text(400)}, dir / "data", "byte", 0.2);
    // f64 weights, so the bucket sums can be held to the overall loss at 1e-12.
    recipe = parse_recipe(eat::test::recipe_text(dir.str()), "test.toml", {"train.precision=\"f64\""});
    model = build_placed_model(recipe);
  }
};

EvalOptions options(int64_t window, int64_t stride, int64_t max_tokens, bool by_position) {
  EvalOptions o{window, stride, max_tokens, 4};
  o.by_position = by_position;
  return o;
}

}  // namespace

TEST_CASE("eval by position: the buckets are 1, 2-3, 4-7, ... cut at the window") {
  auto ranges = [](int64_t window) {
    std::vector<std::pair<int64_t, int64_t>> out;
    for (const PositionBucket& b : position_buckets(window)) out.emplace_back(b.first, b.last);
    return out;
  };
  CHECK(ranges(1) == std::vector<std::pair<int64_t, int64_t>>{{1, 1}});
  CHECK(ranges(8) == std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {2, 3}, {4, 7}, {8, 8}});
  CHECK(ranges(12) == std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {2, 3}, {4, 7}, {8, 12}});
}

TEST_CASE("eval by position: the buckets' token-weighted mean is the overall loss, which does not change") {
  Fixture fx;
  data::TokenFile val(fx.recipe.data.val);
  for (int64_t stride : {24, 10}) {  // a stride below the window scores only positions past the overlap
    CAPTURE(stride);
    const EvalResult plain = evaluate(*fx.model, val, options(24, stride, 0, false));
    const EvalResult r = evaluate(*fx.model, val, options(24, stride, 0, true));
    CHECK(r.loss == plain.loss);  // bit for bit: the overall loss is computed as without buckets
    CHECK(plain.by_position.empty());
    REQUIRE(r.by_position.size() == 5);  // 1, 2-3, 4-7, 8-15, 16-24
    const auto [mean, tokens] = eat::test::bucket_mean(r.by_position);
    CHECK(tokens == r.tokens);
    CHECK(std::fabs(mean - r.loss) <= 1e-12 * r.loss);
    // Position 1 only in the first window when windows overlap; one per window otherwise.
    CHECK(r.by_position[0].tokens == (stride == 24 ? r.windows : 1));
  }
}

TEST_CASE("eval by position: each bucket is the cross-entropy at its positions") {
  Fixture fx;
  data::TokenFile val(fx.recipe.data.val);
  const EvalResult r = evaluate(*fx.model, val, options(8, 8, 16, true));  // two windows of 8
  REQUIRE(r.by_position.size() == 4);
  std::vector<int32_t> ids(17);
  val.read(0, 17, ids.data());
  Tensor in = Tensor::empty({2, 8}, DType::i32);
  for (int i = 0; i < 16; ++i) in.data<int32_t>()[i] = ids[static_cast<size_t>(i)];
  NoGradGuard no_grad;
  Tensor logits = fx.model->forward(in).logits;
  const int64_t V = logits.size(-1);
  // -log softmax at the target of row i (window i / 8, position i % 8 + 1), in f64 by hand.
  auto nll = [&](int i) {
    const double* row = logits.data<double>() + static_cast<int64_t>(i) * V;
    double m = row[0], s = 0;
    for (int64_t v = 0; v < V; ++v) m = std::max(m, row[v]);
    for (int64_t v = 0; v < V; ++v) s += std::exp(row[v] - m);
    return m + std::log(s) - row[ids[static_cast<size_t>(i + 1)]];
  };
  for (const PositionBucket& b : r.by_position) {
    CAPTURE(b.first);
    double sum = 0;
    for (int w = 0; w < 2; ++w)
      for (int64_t p = b.first; p <= b.last; ++p) sum += nll(w * 8 + static_cast<int>(p) - 1);
    CHECK(b.tokens == 2 * (b.last - b.first + 1));
    CHECK(b.loss == doctest::Approx(sum / static_cast<double>(b.tokens)).epsilon(1e-12));
  }
}
