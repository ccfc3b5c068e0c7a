// The per-label byte counts under mpirun: what one sequence-parallel layer sends per rank, exactly,
// for a sequence and for one twice as long. LASP-2 sends states (constant in T), LASP-2H keys and
// values (proportional to T), the halo exchange of a sliding window W tokens (constant in T).
#include <doctest/doctest.h>

#include "framework/comm/comm_stats.h"
#include "framework/parallel/lasp2.h"
#include "base/random.h"

using namespace eat;

namespace {

constexpr int64_t B = 2, H = 2, d = 4, e = 3;
constexpr int64_t f64_bytes = 8;

enum class Layer { lightning, softmax, windowed };

// Bytes this rank sent for one forward and backward of the layer on L tokens per rank, booked to
// the layer's label; nothing may leak to another label.
int64_t layer_bytes(Layer layer, int64_t L, int64_t window = 3) {
  Communicator& w = world();
  Generator gen(3);
  Tensor q = Tensor::randn({B, L, H, d}, gen, 1.0, DType::f64).requires_grad_(),
         k = Tensor::randn({B, L, H, d}, gen, 1.0, DType::f64).requires_grad_(),
         v = Tensor::randn({B, L, H, e}, gen, 1.0, DType::f64).requires_grad_();
  reset_comm_counts();
  Tensor o;
  {
    CommLabel scope("layers.0.attn");
    AttentionOptions opt;
    if (layer == Layer::windowed) opt.window_left = window;
    o = layer == Layer::lightning ? lightning_attention_sp(q, k, v, {0.9, 0.5}, w) : attention_sp(q, k, v, w, opt);
  }
  o.backward(Tensor::full(o.shape(), 1.0, DType::f64));  // outside the scope: the nodes remember the label
  auto counts = comm_counts();
  CHECK(counts.size() == 1);
  return counts["layers.0.attn"].bytes;
}

}  // namespace

TEST_CASE("comm stats: LASP-2 sends the same bytes per rank at T and 2T, LASP-2H twice as many") {
  const int64_t S = world().size(), r = world().rank();
  for (int64_t L : {8, 16}) {
    CAPTURE(L);
    // Forward: this rank's state [B, H, d, e] into the gather; backward: the [S, B, H, d, e] state
    // gradients into the reduce-scatter.
    CHECK(layer_bytes(Layer::lightning, L) == (1 + S) * B * H * d * e * f64_bytes);
  }
  // Forward: k and v into the gather; backward: their gradients for the whole sequence into the
  // reduce-scatter. Doubling T doubles both.
  const int64_t at_T = layer_bytes(Layer::softmax, 8), at_2T = layer_bytes(Layer::softmax, 16);
  CHECK(at_T == (1 + S) * B * 8 * H * (d + e) * f64_bytes);
  CHECK(at_2T == 2 * at_T);
  // Window 3 inside one share: the last 3 keys and values go forward to the next rank, their
  // gradients backward to the previous; the ends of the line send only one way.
  const int64_t sends = (r + 1 < S) + (r > 0);
  for (int64_t L : {8, 16}) CHECK(layer_bytes(Layer::windowed, L) == sends * B * 3 * H * (d + e) * f64_bytes);
}

TEST_CASE("comm stats: labels nest and the time inside operations is counted") {
  Communicator& w = world();
  reset_comm_counts();
  Tensor t = Tensor::full({10}, 1.0, DType::f32);
  {
    CommLabel outer("grads");
    w.all_reduce_sum(t);
    {
      CommLabel inner("layers.1.attn");
      w.all_gather(t);
      w.barrier();
    }
    w.all_reduce_sum(t);
  }
  w.all_reduce_sum(t);
  auto c = comm_counts();
  CHECK(c["grads"].bytes == 80);
  CHECK(c["grads"].calls == 2);
  CHECK(c["layers.1.attn"].bytes == 40);
  CHECK(c["layers.1.attn"].calls == 2);
  CHECK(c["other"].bytes == 40);
  CHECK(comm_total().bytes == 160);
  CHECK(comm_total().seconds > 0);
}
