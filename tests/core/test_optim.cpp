#include <cmath>

#include "gradcheck.h"
#include "framework/nn/layers.h"
#include "framework/optim/adamw.h"
#include "framework/optim/schedule.h"
#include "kernels/adamw.h"

using namespace eat;

namespace {

// A module with one parameter of each kind, to test decay rules.
struct Toy : Module {
  Toy() {
    w = add_parameter("w", Tensor::full({1}, 1.0, DType::f64), ParamKind::weight);
    b = add_parameter("b", Tensor::full({1}, 1.0, DType::f64), ParamKind::bias);
    n = add_parameter("norm", Tensor::full({1}, 1.0, DType::f64), ParamKind::norm);
    e = add_parameter("emb", Tensor::full({1}, 1.0, DType::f64), ParamKind::embedding);
  }
  Tensor w, b, n, e;
};

}  // namespace

TEST_CASE("AdamW matches hand-computed values over three steps") {
  Toy toy;
  AdamW opt(toy.parameters(), AdamWConfig{0.9, 0.999, 1e-8, 0.1});
  // Values computed by hand from the torch.optim.AdamW update (lr 0.1, wd 0.1 on the weight).
  const double grads[3] = {0.5, -0.25, 2.0};
  const double expect_p[3] = {0.890000002, 0.8544662986878463, 0.7788568715222746};
  const double expect_m[3] = {0.05, 0.02, 0.218};
  const double expect_v[3] = {0.00025, 0.00031225, 0.00431193775};
  for (int t = 0; t < 3; ++t) {
    toy.w.set_grad(Tensor::full({1}, grads[t], DType::f64));
    opt.step(0.1);
    CHECK(toy.w.item() == doctest::Approx(expect_p[t]).epsilon(1e-14));
    CHECK(opt.state("w").m.item() == doctest::Approx(expect_m[t]).epsilon(1e-14));
    CHECK(opt.state("w").v.item() == doctest::Approx(expect_v[t]).epsilon(1e-14));
    CHECK(opt.state("w").step == t + 1);
  }
  // Parameters without a gradient are not touched and keep step 0.
  CHECK(toy.b.item() == 1.0);
  CHECK(opt.state("b").step == 0);
}

TEST_CASE("AdamW decays matrices only by default, and the rule is configurable") {
  Toy toy;
  AdamW opt(toy.parameters(), AdamWConfig{});
  CHECK(opt.decays("w"));
  CHECK_FALSE(opt.decays("b"));
  CHECK_FALSE(opt.decays("norm"));
  CHECK_FALSE(opt.decays("emb"));
  AdamW all(toy.parameters(), AdamWConfig{},
            decay_rule({ParamKind::weight, ParamKind::embedding, ParamKind::bias, ParamKind::norm}, {"nor"}));
  CHECK(all.decays("w"));
  CHECK(all.decays("emb"));
  CHECK(all.decays("b"));
  CHECK_FALSE(all.decays("norm"));  // its kind is listed, but its name is excluded
  // With zero gradient, a decayed parameter shrinks by exactly lr * wd; the others stay.
  for (const Parameter& p : toy.parameters()) p.tensor.set_grad(Tensor::zeros({1}, DType::f64));
  AdamW plain(toy.parameters(), AdamWConfig{0.9, 0.95, 1e-8, 0.5});
  plain.step(0.1);
  CHECK(toy.w.item() == doctest::Approx(0.95).epsilon(1e-15));
  CHECK(toy.e.item() == 1.0);
  CHECK_THROWS_WITH_AS(AdamW(toy.parameters(), AdamWConfig{1.5, 0.9, 1e-8, 0}), doctest::Contains("betas"), Error);
}

TEST_CASE("global gradient-norm clipping") {
  Toy toy;
  toy.w.set_grad(Tensor::full({1}, 3.0, DType::f64));
  toy.b.set_grad(Tensor::full({1}, 4.0, DType::f64));
  auto params = toy.parameters();
  CHECK(clip_grad_norm(params, 0.0) == doctest::Approx(5.0).epsilon(1e-15));  // 0: measure only
  CHECK(toy.w.grad().item() == 3.0);
  CHECK(clip_grad_norm(params, 10.0) == doctest::Approx(5.0).epsilon(1e-15));  // below the limit
  CHECK(toy.w.grad().item() == 3.0);
  CHECK(clip_grad_norm(params, 1.0) == doctest::Approx(5.0).epsilon(1e-15));
  CHECK(toy.w.grad().item() == doctest::Approx(3.0 / (5.0 + 1e-6)).epsilon(1e-15));
  CHECK(toy.b.grad().item() == doctest::Approx(4.0 / (5.0 + 1e-6)).epsilon(1e-15));
}

TEST_CASE("AdamW with a gradient scale: the same bits as clipping the gradients first, which stay as they were") {
  // Many values in f32 and f64 (past the threads' threshold): the clip factor folded into the
  // update must equal scaling the gradients in place, then stepping.
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(std::string(dtype_name(dt)));
    Generator gen(5);
    const Tensor init = Tensor::randn({300, 200}, gen, 1.0, dt), grad = Tensor::randn({300, 200}, gen, 3.0, dt);
    Tensor folded = init.clone(), clipped = init.clone();
    const std::vector<Parameter> a{{"w", folded, ParamKind::weight}}, b{{"w", clipped, ParamKind::weight}};
    AdamW opt_a(a, AdamWConfig{}), opt_b(b, AdamWConfig{});
    for (int t = 0; t < 2; ++t) {
      folded.set_grad(grad.clone());
      clipped.set_grad(grad.clone());
      const double norm = grad_norm(a), factor = clip_factor(norm, 1.0);
      CHECK(factor < 1.0);
      CHECK(clip_grad_norm(b, 1.0) == norm);
      opt_a.step(1e-2, factor);
      opt_b.step(1e-2);
      CHECK(folded.to_f64_vector() == clipped.to_f64_vector());
      CHECK(opt_a.state("w").m.to_f64_vector() == opt_b.state("w").m.to_f64_vector());
      CHECK(opt_a.state("w").v.to_f64_vector() == opt_b.state("w").v.to_f64_vector());
      CHECK(folded.grad().to_f64_vector() == grad.to_f64_vector());
    }
  }
  CHECK(clip_factor(5.0, 0.0) == 1.0);
  CHECK(clip_factor(5.0, 10.0) == 1.0);
  CHECK(clip_factor(5.0, 1.0) == 1.0 / (5.0 + 1e-6));
}

TEST_CASE("AdamW and grad_norm over many CPU parameters of both types: the bits of one kernel call per parameter") {
  // The step updates, and measures, all CPU parameters of a type in one call, cut in pieces that
  // cross no parameter's end: each must come out as if updated alone.
  Generator gen(6);
  std::vector<Parameter> params;
  std::vector<Tensor> grads;
  int k = 0;
  for (auto [shape, dt] : std::vector<std::pair<Shape, DType>>{
           {{300, 200}, DType::f32}, {{7}, DType::f32}, {{1000}, DType::f64}, {{20000}, DType::f32}, {{3, 5}, DType::f64}}) {
    Tensor t = Tensor::randn(shape, gen, 1.0, dt);
    grads.push_back(Tensor::randn(shape, gen, 1.0, dt));
    t.set_grad(grads.back().clone());
    params.push_back({"p" + std::to_string(k++), t, ParamKind::weight});
  }
  double squares = 0;
  for (const Tensor& g : grads)
    squares += g.dtype() == DType::f32 ? cpu::sum_of_squares(g.data<float>(), g.numel())
                                       : cpu::sum_of_squares(g.data<double>(), g.numel());
  CHECK(grad_norm(params) == std::sqrt(squares));
  std::vector<Tensor> alone;
  for (const Parameter& p : params) alone.push_back(p.tensor.clone());
  AdamW opt(params, AdamWConfig{});
  opt.step(1e-2, 0.5);
  for (size_t i = 0; i < params.size(); ++i) {
    CAPTURE(i);
    const Tensor& a = alone[i];
    Tensor m = Tensor::zeros(a.shape(), a.dtype()), v = Tensor::zeros(a.shape(), a.dtype());
    const AdamWStep step{1e-2, 0.9, 0.95, 1e-8, 0.1, 1};
    if (a.dtype() == DType::f32)
      cpu::adamw_update(a.data<float>(), grads[i].data<float>(), m.data<float>(), v.data<float>(), a.numel(), step, 0.5);
    else
      cpu::adamw_update(a.data<double>(), grads[i].data<double>(), m.data<double>(), v.data<double>(), a.numel(), step, 0.5);
    CHECK(params[i].tensor.to_f64_vector() == a.to_f64_vector());
    CHECK(opt.state(params[i].name).m.to_f64_vector() == m.to_f64_vector());
  }
}

TEST_CASE("schedules against hand-computed values") {
  LrSchedule s{ScheduleKind::cosine, 1.0, 2, 7, 0.1};
  s.validate();
  CHECK(s.lr_at(0) == doctest::Approx(0.5));
  CHECK(s.lr_at(1) == doctest::Approx(1.0));
  CHECK(s.lr_at(2) == doctest::Approx(1.0));
  CHECK(s.lr_at(3) == doctest::Approx(0.8681980515339464).epsilon(1e-14));  // p = 1/4
  CHECK(s.lr_at(4) == doctest::Approx(0.55).epsilon(1e-14));                // p = 1/2
  CHECK(s.lr_at(6) == doctest::Approx(0.1).epsilon(1e-14));                 // last step: min
  s.kind = ScheduleKind::linear;
  CHECK(s.lr_at(3) == doctest::Approx(0.775).epsilon(1e-14));
  CHECK(s.lr_at(6) == doctest::Approx(0.1).epsilon(1e-14));
  LrSchedule w{ScheduleKind::wsd, 2.0, 2, 10, 0.1, 0.3};  // decay over the last 3 steps
  for (int step = 2; step <= 7; ++step) CHECK(w.lr_at(step) == doctest::Approx(2.0));
  CHECK(w.lr_at(8) == doctest::Approx(1.1).epsilon(1e-14));
  CHECK(w.lr_at(9) == doctest::Approx(0.2).epsilon(1e-14));
  CHECK(parse_schedule_kind("wsd") == ScheduleKind::wsd);
  CHECK_THROWS_WITH_AS(parse_schedule_kind("cosin"), doctest::Contains("unknown schedule kind 'cosin'"), Error);
  LrSchedule bad{ScheduleKind::cosine, 1.0, 9, 7, 0.1};
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("warmup 9"), Error);
}

TEST_CASE("modules name parameters hierarchically") {
  Generator gen(1);
  struct Block : Module {
    explicit Block(Generator& g) : q_proj(add_module<Linear>("q_proj", 4, 4, true, g)) {}
    Linear& q_proj;
  };
  struct Net : Module {
    explicit Net(Generator& g) {
      auto& list = add_module<ModuleList<Block>>("layers");
      for (int i = 0; i < 3; ++i) list.append(g);
    }
  };
  Net net(gen);
  auto params = net.parameters();
  REQUIRE(params.size() == 6);
  CHECK(params[0].name == "layers.0.q_proj.weight");
  CHECK(params[5].name == "layers.2.q_proj.bias");
  CHECK(params[5].kind == ParamKind::bias);
  CHECK(net.num_parameters() == 3 * (16 + 4));
  CHECK(net.parameter("layers.1.q_proj.weight").shape() == Shape{4, 4});
  CHECK_THROWS_WITH_AS(net.parameter("layers.9.q_proj.weight"), doctest::Contains("no parameter named"), Error);
}
