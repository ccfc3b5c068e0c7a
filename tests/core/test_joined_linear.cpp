// Joined projections: several Linear layers over one input as one GEMM, each keeping its own
// parameter (framework/nn/joined_linear.h).
#include "framework/nn/joined_linear.h"
#include "framework/nn/layers.h"
#include "gradcheck.h"
#include "rel_error.h"

using namespace eat;
using namespace eat::test;

namespace {

struct ThreeProjections : Module {
  explicit ThreeProjections(Generator& g, bool bias)
      : a(add_module<Linear>("a", 6, 4, bias, g, 0.5, DType::f64)),
        b(add_module<Linear>("b", 6, 3, bias, g, 0.5, DType::f64)),
        c(add_module<Linear>("c", 6, 5, bias, g, 0.5, DType::f64)) {}
  Linear &a, &b, &c;
};

}  // namespace

TEST_CASE("a joined projection keeps its layers' parameters and computes what they compute") {
  for (bool bias : {false, true}) {
    CAPTURE(bias);
    Generator gen(31);
    ThreeProjections net(gen, bias);
    if (bias)
      for (Linear* l : {&net.a, &net.b, &net.c}) l->bias.copy_from(Tensor::randn(l->bias.shape(), gen, 0.5, DType::f64));
    std::vector<std::vector<double>> before;
    for (const Parameter& p : net.parameters()) before.push_back(p.tensor.to_f64_vector());
    JoinedLinear joined({&net.a, &net.b, &net.c});
    // Names, shapes and values as before the join; the weights now lie one after another in one storage.
    const std::vector<Parameter> params = net.parameters();
    REQUIRE(params.size() == before.size());
    for (size_t i = 0; i < params.size(); ++i) CHECK(params[i].tensor.to_f64_vector() == before[i]);
    CHECK(params[0].name == "a.weight");
    CHECK(net.b.weight.shape() == Shape{3, 6});
    CHECK(net.b.weight.impl().storage == net.a.weight.impl().storage);
    CHECK(net.c.weight.impl().offset == net.a.weight.impl().offset + 24 + 18);
    // The joined weight is a view of that storage, not a copy.
    const Tensor w = concat_outer({net.a.weight, net.b.weight, net.c.weight});
    CHECK(w.shape() == Shape{12, 6});
    CHECK(w.impl().storage == net.a.weight.impl().storage);

    Tensor x = Tensor::randn({2, 3, 6}, gen, 1.0, DType::f64);
    const std::vector<Tensor> parts = joined.forward_split(x);
    REQUIRE(parts.size() == 3);
    CHECK(rel_error(parts[0], net.a.forward(x)) <= 1e-15);
    CHECK(rel_error(parts[1], net.b.forward(x)) <= 1e-15);
    CHECK(rel_error(parts[2], net.c.forward(x)) <= 1e-15);
    CHECK(joined.forward(x).shape() == Shape{2, 3, 12});

    // Gradients reach every layer's own parameters (and the input) through the one GEMM.
    std::vector<Tensor> inputs{x.detach().clone().requires_grad_()};
    for (const Parameter& p : params) inputs.push_back(p.tensor);
    CHECK(gradcheck("joined projection", [&](auto& in) {
      const std::vector<Tensor> y = joined.forward_split(in[0]);
      return add(add(sum(mul(y[0], y[0])), sum(y[1])), sum(mul(y[2], y[2])));
    }, inputs) <= 1.0);
  }
}

TEST_CASE("a joined projection's layers must agree in input width and biases") {
  Generator gen(32);
  Linear a(6, 4, false, gen, 0.5), wide(7, 4, false, gen, 0.5), biased(6, 4, true, gen, 0.5);
  CHECK_THROWS_WITH_AS(JoinedLinear({&a, &wide}), doctest::Contains("differ in input width"), Error);
  CHECK_THROWS_WITH_AS(JoinedLinear({&a, &biased}), doctest::Contains("all have biases or none"), Error);
}

TEST_CASE("linear_split: a joined projection's parts and gradients those of linear then split_last") {
  // f32 on the CPU with parts of 64, 83 and 53 columns (the second and third end inside the GEMM's
  // panels): the packed GEMM writes the parts itself (on builds that have it) and, when every part
  // has a gradient, reads them in place for both backward products; parts of 40 and 64 make a
  // product too small for it and take linear then split_last. Outputs, weight and bias gradients
  // are the separate ops' bits. The input's gradient is too, except when the parts are read in
  // place: its inner dimension is then summed in blocks that follow the parts, so it is held to f32
  // rounding instead.
  for (const std::vector<int64_t>& widths : {std::vector<int64_t>{64, 83, 53}, std::vector<int64_t>{40, 64}})
    for (bool bias : {false, true})
      for (bool every_part : {true, false}) {
        CAPTURE(widths.size());
        CAPTURE(bias);
        CAPTURE(every_part);
        Generator gen(33);
        int64_t out = 0;
        for (int64_t w : widths) out += w;
        const Tensor x0 = Tensor::randn({2, 70, 64}, gen), w0 = Tensor::randn({out, 64}, gen, 0.2),
                     b0 = bias ? Tensor::randn({out}, gen) : Tensor();
        struct Result {
          std::vector<std::vector<double>> parts;
          std::vector<double> dx, dw, db;
        };
        std::vector<Result> results;
        for (bool fused : {true, false}) {
          Tensor x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_(),
                 b = bias ? b0.clone().requires_grad_() : Tensor();
          const std::vector<Tensor> parts = fused ? linear_split(x, w, b, widths) : split_last(linear(x, w, b), widths);
          REQUIRE(parts.size() == widths.size());
          // A loss that weighs each part differently, leaving the second without a gradient or not.
          Tensor loss = sum(mul(parts[0], parts[0]));
          for (size_t i = 1; i < parts.size(); ++i)
            if (every_part || i != 1) loss = add(loss, sum(mul(parts[i], Tensor::full(parts[i].shape(), 0.5f * i))));
          loss.backward();
          Result r;
          for (const Tensor& p : parts) r.parts.push_back(p.to_f64_vector());
          r.dx = x.grad().to_f64_vector();
          r.dw = w.grad().to_f64_vector();
          if (bias) r.db = b.grad().to_f64_vector();
          results.push_back(r);
        }
        CHECK(results[0].parts == results[1].parts);
        CHECK(results[0].dw == results[1].dw);
        CHECK(results[0].db == results[1].db);
        CHECK(rel_error(results[0].dx, results[1].dx) <= 1e-6);  // 3.1e-7 seen
        if (!every_part || widths.size() == 2) CHECK(results[0].dx == results[1].dx);
      }
  CHECK_THROWS_WITH_AS(linear_split(Tensor::zeros({4, 6}), Tensor::zeros({5, 6}), Tensor(), {2, 2}),
                       doctest::Contains("widths do not add up"), Error);
}

TEST_CASE("linear_split with RoPE after the product: parts rotated on finished rows have rope's bits") {
  // q and k rotated (2 heads of 24) and two parts left alone, over 2 x 70 tokens of 64 (the packed
  // GEMM's path on builds that have it, which rotates its finished rows), against linear_split and
  // then rope as an op of its own: outputs and every gradient bit for bit, with and without a
  // gradient for the last part; and at a position offset (a rank's tokens under sequence
  // parallelism).
  const std::vector<int64_t> widths = {48, 48, 40, 56};
  for (int64_t offset : {0, 1000})
    for (bool every_part : {true, false}) {
      CAPTURE(offset);
      CAPTURE(every_part);
      Generator gen(34);
      const Tensor x0 = Tensor::randn({2, 70, 64}, gen), w0 = Tensor::randn({192, 64}, gen, 0.2);
      const PartThen rotate = PartThen::rope(2, 10000.0, offset);
      std::vector<std::vector<std::vector<double>>> results;
      for (bool fused : {true, false}) {
        Tensor x = x0.clone().requires_grad_(), w = w0.clone().requires_grad_();
        std::vector<Tensor> parts;
        if (fused) {
          parts = linear_split(x, w, Tensor(), widths, {rotate, rotate, {}, {}});
        } else {
          parts = linear_split(x, w, Tensor(), widths);
          for (int i : {0, 1})
            parts[i] = reshape(rope(reshape(parts[i], {2, 70, 2, 24}), 10000.0, offset), {2, 70, 48});
        }
        Tensor loss = add(sum(mul(parts[0], parts[1])), sum(mul(parts[2], parts[2])));
        if (every_part) loss = add(loss, sum(mul(parts[3], Tensor::full(parts[3].shape(), 0.5f))));
        loss.backward();
        std::vector<std::vector<double>> r;
        for (const Tensor& p : parts) r.push_back(p.to_f64_vector());
        r.push_back(x.grad().to_f64_vector());
        r.push_back(w.grad().to_f64_vector());
        results.push_back(r);
      }
      CHECK(results[0] == results[1]);
    }
  Generator gen(35);
  const Tensor x = Tensor::randn({2, 70, 64}, gen), w = Tensor::randn({96, 64}, gen);
  CHECK_THROWS_WITH_AS(linear_split(x, w, Tensor(), {48, 48}, {PartThen::rope(2, 1e4)}),
                       doctest::Contains("1 ops after the product for 2 parts"), Error);
  CHECK_THROWS_WITH_AS(linear_split(x, w, Tensor(), {48, 48}, {PartThen::rope(16, 1e4), {}}),
                       doctest::Contains("needs an even head width"), Error);
  CHECK_THROWS_WITH_AS(linear_split(reshape(x, {140, 64}), w, Tensor(), {48, 48}, {PartThen::rope(2, 1e4), {}}),
                       doctest::Contains("needs x [B, T, in]"), Error);
}
