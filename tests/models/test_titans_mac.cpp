// Titans' MAC (memory as context) against its definition written out (titans.md 4.2): per
// segment, retrieve with the segment-start memory, attend over [persistent | h | segment] with
// h_j visible to queries i >= j only, update the memory from the attention's output with the
// inner gradient taken with k and v held fixed, read with the per-token state, gate. The
// model-level causality, decoding and gradient checks of MAC are in test_titans.cpp with the
// other variants.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>

#include "framework/autograd.h"
#include "models/titans.h"
#include "naive_memory.h"
#include "rel_error.h"
#include "titans_test_config.h"

using namespace eat;
using namespace eat::test;

namespace {

// The inner gradient of the memory update: the partial derivative of ||M(k) - v||^2 with k and v
// held fixed (the update rule), or the total derivative, which also follows k and v back through
// y and the retrieved h to the segment-start weights (the trap: k and v depend on those weights).
enum class InnerGradient { partial, total };

// Attention of the segment's rows [h_1 x_1 h_2 x_2 ...] (RoPE positions 0..2n-1) after the
// persistent pairs, causal; the heads' outputs at the x rows, [n, D].
std::vector<double> naive_segment_attention(const models::PersistentAttention& attn, const std::vector<double>& h,
                                            const std::vector<double>& x, int64_t n) {
  const int64_t H = attn.n_heads, d = attn.head_dim, D = H * d, P = attn.persistent;
  std::vector<double> z(static_cast<size_t>(2 * n * D));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < D; ++c) {
      z[(2 * i) * D + c] = h[i * D + c];
      z[(2 * i + 1) * D + c] = x[i * D + c];
    }
  std::vector<double> q = project(z, attn.q_proj.weight), k = project(z, attn.k_proj.weight),
                      v = project(z, attn.v_proj.weight);
  for (int64_t r = 0; r < 2 * n; ++r)
    for (int64_t hh = 0; hh < H; ++hh) {
      rotate(&q[r * D + hh * d], d, r, attn.rope_theta);
      rotate(&k[r * D + hh * d], d, r, attn.rope_theta);
    }
  const std::vector<double> pk = attn.persistent_keys.to_f64_vector(), pv = attn.persistent_values.to_f64_vector();
  std::vector<double> y(static_cast<size_t>(n * D));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t hh = 0; hh < H; ++hh) {
      const int64_t row = 2 * i + 1;
      // Keys: the P persistent ones, then rows 0..row.
      std::vector<double> score, value;
      auto add_key = [&](const double* key, const double* val) {
        double s = 0;
        for (int64_t c = 0; c < d; ++c) s += q[row * D + hh * d + c] * key[c];
        score.push_back(s / std::sqrt(static_cast<double>(d)));
        value.insert(value.end(), val, val + d);
      };
      for (int64_t p = 0; p < P; ++p) add_key(&pk[p * D + hh * d], &pv[p * D + hh * d]);
      for (int64_t r = 0; r <= row; ++r) add_key(&k[r * D + hh * d], &v[r * D + hh * d]);
      const double top = *std::max_element(score.begin(), score.end());
      double total = 0;
      for (double& s : score) total += (s = std::exp(s - top));
      for (size_t j = 0; j < score.size(); ++j)
        for (int64_t c = 0; c < d; ++c) y[i * D + hh * d + c] += score[j] / total * value[j * d + c];
    }
  return y;
}

// MAC's mixer written out for one sequence x [T, D] (the normed block input).
std::vector<double> naive_mac(const models::MemoryAsContext& mac, const std::vector<double>& x, int64_t T,
                              InnerGradient inner) {
  const models::NeuralMemory& memory = mac.memory;
  const int64_t H = memory.n_heads, d = memory.head_dim, D = H * d, b = memory.options.chunk, C = mac.segment;
  const double max_lr = memory.options.max_lr;
  // The retrieval queries come from x, over the whole sequence.
  const NaiveMemoryInputs from_x = naive_memory_inputs(memory, x, T);
  std::vector<NaiveHeadMemory> heads;
  for (int64_t h = 0; h < H; ++h) heads.push_back(NaiveHeadMemory::start(memory, h));
  std::vector<double> y_all, out;  // the attention outputs so far; the mixer's outputs
  for (int64_t s0 = 0; s0 < T; s0 += C) {
    const int64_t n = std::min(C, T - s0);
    const std::vector<double> x_seg(x.begin() + s0 * D, x.begin() + (s0 + n) * D);
    // Retrieve with `starts`, attend, and return the memory's inputs over y_all and this segment.
    auto segment_inputs = [&](const std::vector<NaiveHeadMemory>& starts, std::vector<double>* y_seg) {
      std::vector<double> h(static_cast<size_t>(n * D));
      for (int64_t i = 0; i < n; ++i)
        for (int64_t hh = 0; hh < H; ++hh) starts[hh].read(&from_x.q[(s0 + i) * D + hh * d], &h[i * D + hh * d]);
      const std::vector<double> y = naive_segment_attention(mac.attn, h, x_seg, n);
      if (y_seg) *y_seg = y;
      std::vector<double> joined = y_all;
      joined.insert(joined.end(), y.begin(), y.end());
      return naive_memory_inputs(memory, joined, s0 + n);
    };
    std::vector<double> y;
    const NaiveMemoryInputs in = segment_inputs(heads, &y);
    std::vector<double> m(static_cast<size_t>(n * D));
    const std::vector<NaiveHeadMemory> segment_start = heads;
    for (int64_t hh = 0; hh < H; ++hh) {
      NaiveHeadMemory& mem = heads[hh];
      NaiveHeadMemory chunk_start;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t t = s0 + i, at = t * D + hh * d, gate = t * H + hh;
        if (t % b == 0) chunk_start = mem;
        std::vector<std::vector<double>> u = chunk_start.inner_gradient(&in.k[at], &in.v[at]);
        if (inner == InnerGradient::total) {
          // Central differences of ||M_W(k(W)) - v(W)||^2 over this head's W (linear memory, chunk
          // = segment: the chunk start is the segment start the retrieval used).
          REQUIRE(b == C);
          REQUIRE(mem.hid == 0);
          const double delta = 1e-5;
          for (size_t e = 0; e < u[0].size(); ++e) {
            double loss[2];
            for (int side = 0; side < 2; ++side) {
              std::vector<NaiveHeadMemory> moved = segment_start;
              moved[hh].w[0][e] += side == 0 ? delta : -delta;
              const NaiveMemoryInputs again = segment_inputs(moved, nullptr);
              loss[side] = moved[hh].inner_loss(&again.k[at], &again.v[at]);
            }
            u[0][e] = (loss[0] - loss[1]) / (2 * delta);
          }
        }
        mem.update(u, max_lr, in.theta[gate], in.eta[gate], in.alpha[gate]);
        mem.read(&in.q[at], &m[i * D + hh * d]);  // the per-token state, after token t
      }
    }
    y_all.insert(y_all.end(), y.begin(), y.end());
    // o_proj(RMSNorm_a(y) * sigmoid(RMSNorm_b(m))).
    rms_norm_rows(y, mac.attn_gate_norm.weight, mac.attn_gate_norm.eps);
    rms_norm_rows(m, mac.memory_gate_norm.weight, mac.memory_gate_norm.eps);
    for (size_t i = 0; i < y.size(); ++i) y[i] *= sigmoid_of(m[i]);
    const std::vector<double> o = project(y, mac.attn.o_proj.weight);
    out.insert(out.end(), o.begin(), o.end());
  }
  return out;
}

// A MAC mixer of the tiny model (d_model 8, 2 heads) with every parameter redrawn at `std`, so
// that the linear memory does not start at 0 and every path carries signal.
struct Mixer {
  ModelConfig config;
  Generator gen{21};
  std::unique_ptr<models::MemoryAsContext> mac;
  Mixer(const std::string& memory, int64_t chunk, int64_t segment, double std) : config(titans_config("mac", memory, chunk)) {
    config.options.set("segment", segment);
    mac = std::make_unique<models::MemoryAsContext>(config, models::TitansOptions::from(config), gen);
    for (const Parameter& p : mac->parameters()) {
      Tensor drawn = Tensor::randn(p.tensor.shape(), gen, std, DType::f64);
      if (p.name.find("bias") != std::string::npos) drawn = add(drawn, p.tensor);  // keep the gates' starts
      Tensor(p.tensor).copy_from(drawn);
    }
  }
};

}  // namespace

TEST_CASE("titans mac: the mixer equals its definition written out (linear and MLP memory; chunks of 1 and 2 in "
          "segments of 4, the last segment short; f64)") {
  for (const std::string& memory : {std::string("linear"), std::string("mlp")})
    for (int64_t chunk : {1, 2}) {
      CAPTURE(memory);
      CAPTURE(chunk);
      Mixer mixer(memory, chunk, 4, 0.5);
      const int64_t T = 10;
      Tensor x = Tensor::randn({1, T, 8}, mixer.gen, 1.0, DType::f64);
      NoGradGuard no_grad;
      const std::vector<double> want = naive_mac(*mixer.mac, x.to_f64_vector(), T, InnerGradient::partial);
      // Measured: 2e-16 to 5e-16.
      CHECK(rel_error(mixer.mac->forward(x).to_f64_vector(), want) < 1e-12);
    }
}

TEST_CASE("titans mac: the memory update holds k and v fixed, not the total derivative through the retrieval (f64)") {
  // Linear memory, chunk = segment = 4: every inner gradient of a segment is taken at the
  // segment-start weights, which the retrieval also read, so the two derivatives differ.
  Mixer mixer("linear", 4, 4, 0.5);
  const int64_t T = 8;
  Tensor x = Tensor::randn({1, T, 8}, mixer.gen, 1.0, DType::f64);
  NoGradGuard no_grad;
  const std::vector<double> got = mixer.mac->forward(x).to_f64_vector();
  const std::vector<double> partial = naive_mac(*mixer.mac, x.to_f64_vector(), T, InnerGradient::partial);
  const std::vector<double> total = naive_mac(*mixer.mac, x.to_f64_vector(), T, InnerGradient::total);
  CHECK(rel_error(got, partial) < 1e-12);
  // Measured: 1.4e-2 (and 4e-16 against the partial one).
  CHECK(rel_error(got, total) > 1e-3);
  CHECK(rel_error(partial, total) > 1e-3);
}
