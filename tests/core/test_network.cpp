// End-to-end autograd checks on small networks built from modules.
#include <omp.h>

#include "framework/nn/layers.h"
#include "gradcheck.h"

using namespace eat;
using namespace eat::test;

namespace {

// Two linear layers with a SiLU between them, then a cross-entropy loss.
struct TwoLayer : Module {
  explicit TwoLayer(Generator& g)
      : fc1(add_module<Linear>("fc1", 5, 7, true, g, 0.5, DType::f64)),
        fc2(add_module<Linear>("fc2", 7, 4, true, g, 0.5, DType::f64)) {}
  Tensor forward(const Tensor& x) const { return fc2.forward(silu(fc1.forward(x))); }
  Linear &fc1, &fc2;
};

}  // namespace

TEST_CASE("a two-layer network's parameter gradients match finite differences") {
  Generator gen(21);
  TwoLayer net(gen);
  Tensor x = randn64({3, 5}, gen, 1.0, false);
  Tensor targets = Tensor::from_vector<int64_t>({0, 3, 1}, {3});
  std::vector<Tensor> params;
  for (const Parameter& p : net.parameters()) params.push_back(p.tensor);
  // The parameters are the gradcheck inputs; the closure reads them through the module.
  CHECK(gradcheck("two-layer net", [&](auto&) { return cross_entropy(net.forward(x), targets); }, params) <= 1.0);
  CHECK(gradcheck("two-layer net, input grad", [&](auto& in) { return net.forward(in[0]); }, {x.detach().clone().requires_grad_()}) <= 1.0);
}

TEST_CASE("SwiGLU and SGLU mixers: gradient checks through the modules") {
  Generator gen(22);
  SwiGLU swiglu(6, 10, gen, 0.3, DType::f64);
  SGLU sglu(6, 10, gen, 0.3, DType::f64);
  Tensor x = randn64({2, 3, 6}, gen);
  for (Module* m : std::vector<Module*>{&swiglu, &sglu}) {
    std::vector<Tensor> inputs{x};
    for (const Parameter& p : m->parameters()) inputs.push_back(p.tensor);
    auto fn = [&](auto& in) { return m == &swiglu ? swiglu.forward(in[0]) : sglu.forward(in[0]); };
    CHECK(gradcheck("channel mixer", fn, inputs) <= 1.0);
  }
}

TEST_CASE("forward and backward are bit-identical across runs") {
  Generator gen(23);
  Linear fc(64, 96, true, gen);
  RMSNorm norm(96);
  Tensor x = Tensor::randn({33, 64}, gen);
  auto run = [&] {
    fc.zero_grad();
    norm.zero_grad();
    Tensor y = norm.forward(gelu(fc.forward(x)));
    sum(mul(y, y)).backward();
    std::vector<double> out = y.to_f64_vector();
    for (const Tensor& t : {fc.weight, fc.bias, norm.weight}) {
      auto g = t.grad().to_f64_vector();
      out.insert(out.end(), g.begin(), g.end());
    }
    return out;
  };
  auto first = run();
  auto second = run();
  CHECK(first == second);
}
