// The Titans family under sequence parallelism (2 and 4 ranks, f64): every variant with either
// memory gives on every rank the logits of its share and, summed over the ranks, the parameter
// gradients of the whole sequence in one process (the memory's state chained through the ranks in
// series, the convs' and the window's halos, MAC's segment carry), in any number of wavefront
// slices over the batch; the chain sends the same bytes
// at T and 2T; a split that cuts a memory chunk or a MAC segment is refused with the numbers.
#include <doctest/doctest.h>

#include "framework/comm/comm_stats.h"
#include "framework/model.h"
#include "framework/ops.h"
#include "model_share.h"
#include "rel_error.h"
#include "models/titans.h"
#include "models/titans_test_config.h"

using namespace eat;
using namespace eat::test;

TEST_CASE("titans: sequence-parallel training equals the whole sequence, logits and every gradient (every variant "
          "and memory; f64)") {
  for (const std::string variant : {"lmm", "mal", "mag", "mac"})
    for (const std::string memory : {"linear", "mlp"}) {
      CAPTURE(variant);
      CAPTURE(memory);
      // Chunks of 2, MAC segments of 4, 4 tokens per rank: the chain crosses each rank boundary;
      // the window (2 keys back) and the convs (3 rows back) reach into the previous rank.
      check_split_model_equals_whole(titans_config(variant, memory, 2), 2, 4, 31);
      // 2 tokens per rank (chunk 1): the convs' halo spans two earlier ranks.
      if (variant != "mac") check_split_model_equals_whole(titans_config(variant, memory, 1), 1, 2, 33);
    }
}

TEST_CASE("titans: the chain's wavefront over the batch gives the same logits and gradients in any number of slices "
          "(f64)") {
  // parallel.chain_slices 1 (the whole batch at once), 2 (uneven: 1 and 2 sequences) and 3 (0: one
  // per sequence) for the variants and memories that chain their state through the ranks; with one
  // sequence, the slices are groups of the 2 heads (MAC's heads meet in its attention: one slice).
  for (const auto& [variant, memory] : {std::pair{"lmm", "mlp"}, {"mal", "mlp"}, {"mag", "mlp"}, {"mac", "linear"}, {"mac", "mlp"}})
    for (int64_t B : {3, 1})
      for (int64_t slices : {1, 2, 0}) {
        CAPTURE(variant);
        CAPTURE(memory);
        CAPTURE(B);
        CAPTURE(slices);
        check_split_model_equals_whole(titans_config(variant, memory, 2), B, 4, 37, slices);
      }
}

namespace {

// The world's communicator, logging the direction of each point-to-point message and its bytes.
class MessageLog : public Communicator {
 public:
  explicit MessageLog(Communicator& inner) : inner_(inner) {}
  struct Message {
    char direction;  // 's' sent, 'r' received
    int64_t bytes;
  };
  std::vector<Message> messages;

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  std::string backend() const override { return inner_.backend(); }
  void all_reduce_sum(const Tensor& t) override { inner_.all_reduce_sum(t); }
  Tensor all_gather(const Tensor& t) override { return inner_.all_gather(t); }
  std::unique_ptr<PendingGather> all_gather_async(const Tensor& t) override { return inner_.all_gather_async(t); }
  Tensor reduce_scatter_sum(const Tensor& t) override { return inner_.reduce_scatter_sum(t); }
  void broadcast(const Tensor& t, int root) override { inner_.broadcast(t, root); }
  void send(const Tensor& t, int dst) override {
    messages.push_back({'s', static_cast<int64_t>(t.nbytes())});
    inner_.send(t, dst);
  }
  void recv(const Tensor& t, int src) override {
    messages.push_back({'r', static_cast<int64_t>(t.nbytes())});
    inner_.recv(t, src);
  }
  void send_recv(const Tensor& out, int dst, const Tensor& in, int src) override {
    messages.push_back({'x', static_cast<int64_t>(out.nbytes())});
    inner_.send_recv(out, dst, in, src);
  }
  bool any(bool flag) override { return inner_.any(flag); }
  double max(double value) override { return inner_.max(value); }
  void barrier() override { inner_.barrier(); }
  std::unique_ptr<Communicator> split(int color, int key) override { return inner_.split(color, key); }

 private:
  Communicator& inner_;
};

}  // namespace

TEST_CASE("titans: the chain's backward is a wavefront too: a middle rank sends each slice's adjoint on before it "
          "waits for the next slice's (slices of sequences, and of one sequence's heads)") {
  // 3 sequences in 3 slices, an MLP memory (1 layer): a middle rank (3 ranks or more) receives
  // each slice's state adjoint from rank r + 1 and sends its start's adjoint to rank r - 1, slice
  // by slice (last to first), never two slices' receives before their sends. The memory state's 4
  // tensors of one sequence (W1, W2 and their momenta; H 2, d 4, hidden 5: 320 bytes each) differ
  // in size from the halos ([3, 3, 8]: 576 bytes).
  Communicator& w = world();
  if (w.size() < 3) return;
  ModelConfig c = titans_config("lmm", "mlp", 2);
  c.n_layers = 1;
  c.options.set("memory_hidden", int64_t{5});
  Generator gen(5);
  auto model = build_model(c, gen);
  MessageLog log(w);
  model->set_sequence_parallel(&log, 0);
  Tensor out = model->forward(random_ids(3, 4, 11, 6)).logits;
  log.messages.clear();
  sum(out).backward();
  std::string order;
  for (const auto& m : log.messages)
    if (m.bytes == 2 * 4 * 5 * 8) order += m.direction;
  if (w.rank() > 0 && w.rank() + 1 < w.size()) CHECK(order == "rrrrssss" "rrrrssss" "rrrrssss");

  // One sequence: the same by heads, 2 slices of one head each (160 bytes a tensor; halos 192).
  out = model->forward(random_ids(1, 4, 11, 6)).logits;
  log.messages.clear();
  sum(out).backward();
  order.clear();
  for (const auto& m : log.messages)
    if (m.bytes == 4 * 5 * 8) order += m.direction;
  if (w.rank() > 0 && w.rank() + 1 < w.size()) CHECK(order == "rrrrssss" "rrrrssss");
}

TEST_CASE("titans: the linear memory's affine fold equals the serial chain (every variant but mac; f64)") {
  Communicator& w = world();
  const int64_t r = w.rank(), L = 4;
  for (const std::string variant : {"lmm", "mal", "mag"}) {
    CAPTURE(variant);
    const ModelConfig c = titans_config(variant, "linear", 2);
    Tensor ids = time_slice(random_ids(2, w.size() * L, 11, 41), r * L, L);
    std::vector<std::vector<double>> logits, grads;
    for (bool chain : {false, true}) {
      Generator gen(43);
      auto model = build_model(c, gen);
      model->set_sequence_parallel(&w);
      for (const auto& [path, module] : model->descendants())
        if (auto* memory = dynamic_cast<models::NeuralMemory*>(module)) memory->chain_linear_memory = chain;
      Tensor out = model->forward(ids).logits;
      sum(mul(out, out)).backward();
      logits.push_back(out.to_f64_vector());
      std::vector<double> all;
      for (const Parameter& p : model->parameters()) {  // summed over the ranks: the whole gradient
        Tensor g = p.tensor.grad().clone();
        w.all_reduce_sum(g);
        const std::vector<double> v = g.to_f64_vector();
        all.insert(all.end(), v.begin(), v.end());
      }
      grads.push_back(all);
    }
    CHECK(rel_error(logits[0], logits[1]) < 1e-12);
    CHECK(rel_error(grads[0], grads[1]) < 1e-12);
  }
}

TEST_CASE("titans: the memory sends one state or summary per layer and rank whatever T is") {
  Communicator& w = world();
  const int64_t S = w.size(), r = w.rank(), B = 2, H = 2, d = 4, hidden = 6;
  for (const std::string memory : {"linear", "mlp"}) {
    CAPTURE(memory);
    const int64_t state = memory == "linear" ? 2 * H * d * d : 2 * H * (d * hidden + hidden * d);  // W and S
    for (int64_t L : {4, 8}) {
      CAPTURE(L);
      Generator gen(17);
      auto model = build_model(titans_config("lmm", memory, 2), gen);
      model->set_sequence_parallel(&w);
      Tensor ids = random_ids(B, L, 11, 18);
      reset_comm_counts();
      sum(model->forward(ids).logits).backward();
      auto counts = comm_counts();
      // The three convs' halos of k - 1 = 3 rows of D = 8, forward and back (the ends of the line
      // one way). MLP memory: the state on to rank r + 1 and its gradient back to rank r - 1.
      // Linear memory: this rank's summary (Phi [2d, 2d] and c [2d, d] per head) into the
      // AllGather, the gathered summaries' gradients into the reduce-scatter.
      const int64_t halos = ((r + 1 < S) + (r > 0)) * 3 * B * 3 * 8 * 8;
      const int64_t memory_bytes = memory == "linear" ? (1 + S) * B * H * (4 * d * d + 2 * d * d) * 8
                                                      : ((r + 1 < S) + (r > 0)) * B * state * 8;
      CHECK(counts["layers.0.memory"].bytes == memory_bytes + halos);
    }
  }
}

TEST_CASE("titans: a sequence split that cuts a memory chunk or a MAC segment is refused with the numbers") {
  const FamilySpec* titans = find_family("titans");
  REQUIRE(titans);
  ModelConfig c = titans_config("mag", "mlp", 16);
  CHECK(titans->check(c, 512, 4) == "");
  CHECK(titans->check(c, 96, 4) ==
        "chunk = 16 does not divide the 24 tokens of each sequence-parallel rank (seq_len 96 over parallel.sp = 4): a "
        "memory chunk may not straddle two ranks");
  CHECK(titans->check(c, 96, 1) == "");  // one rank: nothing to straddle
  c = titans_config("mac", "linear", 16);  // segments of 32
  CHECK(titans->check(c, 256, 4) == "");
  CHECK(titans->check(c, 192, 4) ==
        "segment = 32 does not divide the 48 tokens of each sequence-parallel rank (seq_len 192 over parallel.sp = 4): a "
        "memory chunk may not straddle two ranks");
}
