// taylor_attention split at its incoming state (taylor_attention_sums, taylor_state_readout): the
// readout of a state added to a zero-start pass's sums equals the attention from that state, output
// and every gradient, at block edges and for every block length (f64); bad inputs name the tensor.
#include "base/error.h"
#include "gradcheck.h"
#include "kernels/head_shape.h"

using namespace eat;
using namespace eat::test;

namespace {

// y and the gradients of q, k, v and the state for sum(y * r), from `attend(q, k, v, s0)`.
template <typename F>
std::vector<Tensor> run(const std::vector<Tensor>& in, const Tensor& r, F attend) {
  std::vector<Tensor> x;
  for (const Tensor& t : in) x.push_back(t.detach().requires_grad_());
  Tensor y = attend(x[0], x[1], x[2], x[3]);
  y.backward(r);
  return {y.detach(), x[0].grad(), x[1].grad(), x[2].grad(), x[3].grad()};
}

}  // namespace

TEST_CASE("taylor split: readout after the sums equals taylor_attention from the state, output and gradients (f64)") {
  // Block edges (T = 1, 16, 17, 70 against blocks of 16 and 64), both variants; the state is a
  // real prefix's (its normaliser column positive). 1e-12: the same sums in another order.
  Generator gen(8);
  for (int64_t T : {1, 16, 17, 70})
    for (int64_t block : {16, 64})
      for (bool normalize : {true, false}) {
        CAPTURE(T);
        CAPTURE(block);
        CAPTURE(normalize);
        const HeadShape n{2, T, 3, 4, 5};
        const Tensor s0 = taylor_state_sum(randn64({2, 9, 3, 4}, gen, 0.7, false), randn64({2, 9, 3, 5}, gen, 1.0, false));
        const std::vector<Tensor> in = {randn64(n.qk(), gen, 0.7, false), randn64(n.qk(), gen, 0.7, false),
                                        randn64(n.v(), gen, 1.0, false), s0};
        const Tensor r = randn64(n.v(), gen, 1.0, false);
        const TaylorOptions o{.block = block, .normalize = normalize};
        const auto whole = run(in, r, [&](auto& q, auto& k, auto& v, auto& s) { return taylor_attention(q, k, v, s, o).first; });
        const auto split = run(in, r, [&](auto& q, auto& k, auto& v, auto& s) {
          return taylor_state_readout(q, s, taylor_attention_sums(q, k, v, o), o);
        });
        for (size_t i = 0; i < whole.size(); ++i) {
          CAPTURE(i);
          CHECK(rel_error(split[i], whole[i]) < 1e-12);
        }
      }
}

TEST_CASE("taylor split: bad inputs name the tensor and the expected shape") {
  Generator gen(9);
  const Tensor q = randn64({1, 3, 2, 4}, gen), k = randn64({1, 3, 2, 4}, gen), v = randn64({1, 3, 2, 5}, gen);
  const Tensor sums = taylor_attention_sums(q, k, v), state = taylor_state_sum(k, v);
  CHECK(sums.shape() == Shape{1, 3, 2, 6});
  CHECK_THROWS_WITH_AS(taylor_attention_sums(q, randn64({1, 4, 2, 4}, gen), v),
                       doctest::Contains("must have the same shape"), Error);
  CHECK_THROWS_WITH_AS(taylor_state_readout(q, randn64({1, 2, 14, 6}, gen), sums),
                       doctest::Contains("taylor_state_readout: state [B, H, D', e + 1] must be [1, 2, 15, 6]"), Error);
  CHECK_THROWS_WITH_AS(taylor_state_readout(q, state, randn64({1, 3, 2, 5}, gen)),
                       doctest::Contains("sums [B, T, H, e + 1] must be [1, 3, 2, 6]"), Error);
  CHECK_THROWS_WITH_AS(taylor_state_readout(q, state, sums.to(DType::f32)), doctest::Contains("got f32"), Error);
  CHECK_THROWS_WITH_AS(taylor_state_readout(q, Tensor(), sums), doctest::Contains("needs the state and the sums"), Error);
}
