// What is particular to the BASED family: the layer schedule from the two recipe lists and their
// checks, each mixer against a direct computation in f64 (BaseConv, the window convention, Taylor
// attention with and without the denominator), gradients of a model with all three mixers, FLOPs
// and decoding token by token.
#include <doctest/doctest.h>

#include <cmath>

#include "base/error.h"
#include "framework/autograd.h"
#include "framework/config/recipe.h"
#include "framework/flops.h"
#include "framework/model.h"
#include "framework/ops.h"
#include "gradcheck.h"
#include "models/based.h"
#include "tiny_model.h"

using namespace eat;
using namespace eat::test;

namespace {

// Three layers, one of each mixer: BaseConv at 0, Taylor at 1, sliding window at 2.
ModelConfig three_mixers(DType dtype) {
  ModelConfig c = tiny_model_config("based", dtype);
  c.n_layers = 3;
  c.options.set("taylor_layers", IntList{1});
  c.options.set("window_layers", IntList{2});
  return c;
}

models::Based& as_based(std::unique_ptr<LanguageModel>& model) {
  auto* based = dynamic_cast<models::Based*>(model.get());
  REQUIRE(based);
  return *based;
}

const models::BasedBlock& block(std::unique_ptr<LanguageModel>& model, int64_t layer) {
  for (const auto& [path, module] : model->descendants())
    if (path == "layers." + std::to_string(layer))
      if (const auto* b = dynamic_cast<const models::BasedBlock*>(module)) return *b;
  FAIL("no block ", layer);
  throw;
}

// x W^T + b for x [T, in] (row-major), W [out, in], b [out] or empty.
std::vector<double> affine(const std::vector<double>& x, int64_t T, const Tensor& weight, const Tensor& bias = Tensor()) {
  const int64_t out = weight.size(0), in = weight.size(1);
  auto w = weight.to_f64_vector();
  auto b = bias.defined() ? bias.to_f64_vector() : std::vector<double>(static_cast<size_t>(out), 0.0);
  std::vector<double> y(static_cast<size_t>(T * out));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double s = b[static_cast<size_t>(o)];
      for (int64_t i = 0; i < in; ++i) s += x[static_cast<size_t>(t * in + i)] * w[static_cast<size_t>(o * in + i)];
      y[static_cast<size_t>(t * out + o)] = s;
    }
  return y;
}

const char* kRecipe = R"(
[run]
name = "b"

[model]
family = "based"
d_model = 16
n_layers = 4
n_heads = 2

[model.based]
taylor_layers = [1]
window_layers = [2, 3]

[data]
train = "train.tok"

[train]
steps = 10
)";

std::string recipe_error(const std::string& text, const std::vector<std::string>& sets = {}) {
  try {
    parse_recipe(text, "r.toml", sets);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("based: the reference schedule, and every layer's mixer named by its module") {
  // based-360m: Taylor at {1, 6, 11, 16, 21}, windows at {2, 7, 12, 17, 22}, BaseConv in the other 17 of 27.
  auto schedule = models::based_schedule(27, {1, 6, 11, 16, 21}, {2, 7, 12, 17, 22});
  int conv = 0, taylor = 0, window = 0;
  for (models::BasedMixer m : schedule) {
    conv += m == models::BasedMixer::base_conv;
    taylor += m == models::BasedMixer::taylor;
    window += m == models::BasedMixer::window;
  }
  CHECK((conv == 17 && taylor == 5 && window == 5));
  CHECK(schedule[6] == models::BasedMixer::taylor);
  CHECK(schedule[22] == models::BasedMixer::window);
  CHECK(schedule[26] == models::BasedMixer::base_conv);

  Generator gen(1);
  auto model = build_model(three_mixers(DType::f32), gen);
  // d_model 8, 2 heads (e = 4), feature_dim 3, SwiGLU 12, tied embeddings.
  CHECK(model->parameter("layers.0.conv.conv_proj.weight").shape() == Shape{16, 8});
  CHECK(model->parameter("layers.0.conv.gate_proj.bias").shape() == Shape{16});
  CHECK(model->parameter("layers.0.conv.conv.weight").shape() == Shape{16, 3});
  CHECK(model->parameter("layers.0.conv.out_proj.bias").shape() == Shape{8});
  CHECK(model->parameter("layers.1.taylor.q_proj.weight").shape() == Shape{6, 8});
  CHECK(model->parameter("layers.1.taylor.v_proj.weight").shape() == Shape{8, 8});
  CHECK(model->parameter("layers.2.window.o_proj.weight").shape() == Shape{8, 8});
  const int64_t mlp = 3 * 8 * 12, norms = 2 * 8;
  const int64_t conv_params = 2 * (8 * 16 + 16) + 16 * 3 + 16 * 8 + 8, taylor_params = 2 * 8 * 6 + 2 * 64,
                window_params = 4 * 64;
  CHECK(model->num_parameters() == 11 * 8 + 3 * (mlp + norms) + conv_params + taylor_params + window_params + 8);
  for (const Parameter& p : model->parameters()) CHECK(p.name.find("lm_head") == std::string::npos);
}

TEST_CASE("based: init follows the reference (0.02, residual writers at 0.02 / sqrt(2 n_layer), biases 0)") {
  ModelConfig c = three_mixers(DType::f64);
  c.d_model = 64;
  c.n_heads = 4;
  c.init_std = 0.02;
  c.options.set("mlp_hidden", int64_t{128});
  Generator gen(2);
  auto model = build_model(c, gen);
  auto stddev = [&](const std::string& name) {
    auto v = model->parameter(name).to_f64_vector();
    double s = 0;
    for (double x : v) s += x * x;
    return std::sqrt(s / static_cast<double>(v.size()));
  };
  const double residual = 0.02 / std::sqrt(6.0);
  CHECK(stddev("layers.0.conv.conv_proj.weight") == doctest::Approx(0.02).epsilon(0.05));
  CHECK(stddev("layers.1.taylor.k_proj.weight") == doctest::Approx(0.02).epsilon(0.1));
  CHECK(stddev("layers.0.conv.out_proj.weight") == doctest::Approx(residual).epsilon(0.05));
  CHECK(stddev("layers.1.taylor.out_proj.weight") == doctest::Approx(residual).epsilon(0.05));
  CHECK(stddev("layers.2.window.o_proj.weight") == doctest::Approx(residual).epsilon(0.05));
  CHECK(stddev("layers.2.mlp.down_proj.weight") == doctest::Approx(residual).epsilon(0.05));
  CHECK(stddev("layers.0.conv.conv_proj.bias") == 0.0);
  CHECK(stddev("layers.0.conv.out_proj.bias") == 0.0);
}

TEST_CASE("based: the layer lists are checked, errors naming the key and its place") {
  CHECK_NOTHROW(parse_recipe(kRecipe, "r.toml"));
  const Recipe r = parse_recipe(kRecipe, "r.toml", {"model.based.taylor_layers=[0, 3]", "model.based.window_layers=[]"});
  CHECK(r.model.options.get_int_list("taylor_layers") == IntList{0, 3});
  CHECK(r.model.options.get_int_list("window_layers").empty());
  CHECK(recipe_error(kRecipe, {"model.based.taylor_layers=[1, 4]"}) ==
        "--set model.based.taylor_layers=[1, 4]: model.based.taylor_layers: taylor_layers: layer 4 is out of range "
        "(model.n_layers = 4: layers 0 to 3)");
  CHECK(recipe_error(kRecipe, {"model.based.taylor_layers=[-1]"}).find("layer -1 is out of range") != std::string::npos);
  CHECK(recipe_error(kRecipe, {"model.based.window_layers=[2, 2]"}).find("window_layers: layer 2 is listed twice") !=
        std::string::npos);
  // In both lists: located at window_layers in the file.
  std::string both = kRecipe;
  both.replace(both.find("window_layers = [2, 3]"), 22, "window_layers = [1, 3]");
  CHECK(recipe_error(both, {}) ==
        "r.toml:13:17: model.based.window_layers: window_layers: layer 1 is in taylor_layers too (a layer has one mixer)");
  // Not a list of integers: the element is named with its index and place.
  std::string text = kRecipe;
  text.replace(text.find("taylor_layers = [1]"), 19, "taylor_layers = [1, \"x\"]");
  CHECK(recipe_error(text, {}) == "r.toml:12:21: model.based.taylor_layers[1]: expected an integer, got a string ('x')");
  CHECK(recipe_error(kRecipe, {"model.based.taylor_layers=1"}) ==
        "--set model.based.taylor_layers=1: model.based.taylor_layers: expected an array of integers like [1, 6], got an "
        "integer (1)");
  for (const auto& [set, message] : std::vector<std::pair<std::string, std::string>>{
           {"window=-1", "model.based.window: window must be >= 0"},
           {"feature_dim=0", "model.based.feature_dim: feature_dim must be >= 1"},
           {"taylor_block=0", "model.based.taylor_block: taylor_block must be >= 1"},
           {"conv_kernel=0", "model.based.conv_kernel: conv_kernel must be >= 1"},
           {"mlp_hidden=-1", "model.based.mlp_hidden: mlp_hidden must be >= 0"},
           {"taylor_kernel=quadratic", "model.based.taylor_kernel: = \"quadratic\": must be \"chunked\", \"parallel\" or \"recurrent\""}}) {
    CAPTURE(set);
    CHECK(recipe_error(kRecipe, {"model.based." + set}).find(message) != std::string::npos);
  }
  CHECK(recipe_error(kRecipe, {"model.d_model=18", "model.n_heads=2"}).find("must be even for RoPE") != std::string::npos);
}

TEST_CASE("based: BaseConv is silu(conv(x W_u + b_u)) * (x W_g + b_g), projected, against a direct computation (f64)") {
  Generator gen(3);
  auto model = build_model(three_mixers(DType::f64), gen);
  const models::BaseConv& bc = *block(model, 0).conv;
  const int64_t T = 6, D = 8, C = 16, k = 3;
  Tensor x = Tensor::randn({1, T, D}, gen, 1.0, DType::f64);
  // Biases are zero at init: give them values so that they are checked too.
  for (const Tensor* b : {&bc.conv_proj.bias, &bc.gate_proj.bias, &bc.out_proj.bias}) {
    Tensor r = Tensor::randn(b->shape(), gen, 0.5, DType::f64);
    std::copy_n(r.data<double>(), r.numel(), b->data<double>());
  }
  NoGradGuard no_grad;
  const std::vector<double> xs = x.to_f64_vector();
  const std::vector<double> u1 = affine(xs, T, bc.conv_proj.weight, bc.conv_proj.bias),
                            u2 = affine(xs, T, bc.gate_proj.weight, bc.gate_proj.bias);
  const std::vector<double> w = bc.conv.weight.to_f64_vector();
  std::vector<double> gated(static_cast<size_t>(T * C));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t ch = 0; ch < C; ++ch) {
      // c[t, ch] = sum_j w[ch, j] u1[t - 2 + j, ch]: w[ch, 2] meets the current token.
      double c = 0;
      for (int64_t j = 0; j < k; ++j)
        if (t - (k - 1) + j >= 0) c += w[static_cast<size_t>(ch * k + j)] * u1[static_cast<size_t>((t - (k - 1) + j) * C + ch)];
      gated[static_cast<size_t>(t * C + ch)] = c / (1 + std::exp(-c)) * u2[static_cast<size_t>(t * C + ch)];
    }
  const std::vector<double> want = affine(gated, T, bc.out_proj.weight, bc.out_proj.bias);
  CHECK(rel_error(bc.forward(x).to_f64_vector(), want) < 1e-14);
}

TEST_CASE("based: window = W means keys [i - W, i], RoPE on the full head, against a naive masked softmax (f64)") {
  ModelConfig c = three_mixers(DType::f64);
  c.options.set("window", int64_t{2});
  Generator gen(4);
  auto model = build_model(c, gen);
  const models::CausalSelfAttention& attn = *block(model, 2).window;
  CHECK(attn.attention_options.window_left == 2);
  const int64_t T = 7, H = 2, d = 4;
  Tensor x = Tensor::randn({1, T, 8}, gen, 1.0, DType::f64);
  NoGradGuard no_grad;
  // q and k rotated at positions 0..T-1 over all d dimensions (rope's rotate-half pairs).
  auto q = rope(reshape(attn.q_proj.forward(x), {1, T, H, d}), 10000.0).to_f64_vector();
  auto kk = rope(reshape(attn.k_proj.forward(x), {1, T, H, d}), 10000.0).to_f64_vector();
  auto v = reshape(attn.v_proj.forward(x), {1, T, H, d}).to_f64_vector();
  std::vector<double> a(static_cast<size_t>(T * H * d), 0.0);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < T; ++i) {
      // Softmax over j in [i - 2, i] only: 3 keys (self included), fewer at the start.
      std::vector<double> s;
      double m = -1e300;
      for (int64_t j = std::max<int64_t>(0, i - 2); j <= i; ++j) {
        double dot = 0;
        for (int64_t t = 0; t < d; ++t) dot += q[static_cast<size_t>((i * H + h) * d + t)] * kk[static_cast<size_t>((j * H + h) * d + t)];
        s.push_back(dot / std::sqrt(static_cast<double>(d)));
        m = std::max(m, s.back());
      }
      double z = 0;
      for (double& e : s) z += (e = std::exp(e - m));
      for (int64_t j = std::max<int64_t>(0, i - 2), n = 0; j <= i; ++j, ++n)
        for (int64_t t = 0; t < d; ++t)
          a[static_cast<size_t>((i * H + h) * d + t)] += s[static_cast<size_t>(n)] / z * v[static_cast<size_t>((j * H + h) * d + t)];
    }
  const std::vector<double> want = affine(a, T, attn.o_proj.weight);
  CHECK(rel_error(attn.forward(x).to_f64_vector(), want) < 1e-13);
}

TEST_CASE("based: the Taylor mixer with and without the denominator against a direct computation (f64)") {
  for (bool denominator : {true, false}) {
    CAPTURE(denominator);
    ModelConfig c = three_mixers(DType::f64);
    c.options.set("taylor_denominator", denominator);
    Generator gen(5);
    auto model = build_model(c, gen);
    const models::TaylorAttention& ta = *block(model, 1).taylor;
    CHECK((ta.head_norm == nullptr) == denominator);
    const int64_t T = 7, H = 2, f = 3, e = 4;
    Tensor x = Tensor::randn({1, T, 8}, gen, 1.0, DType::f64);
    if (ta.head_norm) {  // a head-norm weight other than ones
      Tensor r = Tensor::randn({e}, gen, 1.0, DType::f64);
      std::copy_n(r.data<double>(), e, ta.head_norm->weight.data<double>());
    }
    NoGradGuard no_grad;
    const auto xs = x.to_f64_vector();
    const auto q = affine(xs, T, ta.q_proj.weight), k = affine(xs, T, ta.k_proj.weight), v = affine(xs, T, ta.v_proj.weight);
    const auto g = ta.head_norm ? ta.head_norm->weight.to_f64_vector() : std::vector<double>();
    std::vector<double> y(static_cast<size_t>(T * H * e), 0.0);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        // A_ij = 1 + s + s^2 / 2 with s = q_i . k_j / sqrt(f), over j <= i.
        double Z = 0;
        std::vector<double> N(static_cast<size_t>(e), 0.0);
        for (int64_t j = 0; j <= i; ++j) {
          double s = 0;
          for (int64_t t = 0; t < f; ++t) s += q[static_cast<size_t>(i * H * f + h * f + t)] * k[static_cast<size_t>(j * H * f + h * f + t)];
          s /= std::sqrt(static_cast<double>(f));
          const double A = 1 + s + s * s / 2;
          Z += A;
          for (int64_t t = 0; t < e; ++t) N[static_cast<size_t>(t)] += A * v[static_cast<size_t>(j * H * e + h * e + t)];
        }
        double ms = 0;
        for (double n : N) ms += n * n / static_cast<double>(e);
        for (int64_t t = 0; t < e; ++t)
          y[static_cast<size_t>(i * H * e + h * e + t)] =
              denominator ? N[static_cast<size_t>(t)] / (Z + 1e-12)
                          : N[static_cast<size_t>(t)] / std::sqrt(ms + 1e-5) * g[static_cast<size_t>(t)];
      }
    const std::vector<double> want = affine(y, T, ta.out_proj.weight);
    CHECK(rel_error(ta.forward(x).to_f64_vector(), want) < 1e-12);
  }
}

TEST_CASE("based: a model of all three mixers has exact gradients, with and without the denominator (f64)") {
  for (bool denominator : {true, false}) {
    CAPTURE(denominator);
    ModelConfig c = three_mixers(DType::f64);
    c.options.set("taylor_denominator", denominator);
    c.options.set("tie_embeddings", !denominator);  // the untied head too
    Generator gen(6);
    auto model = build_model(c, gen);
    Tensor ids = Tensor::from_vector<int32_t>({1, 5, 2, 7, 3, 0, 10, 4, 4, 6}, {2, 5});
    Tensor targets = Tensor::from_vector<int32_t>({5, 2, 7, 3, 0, 10, 4, 4, 6, 1}, {10});
    auto loss = [&](const std::vector<Tensor>&) { return cross_entropy(reshape(model->forward(ids).logits, {10, 11}), targets); };
    for (const Parameter& p : model->parameters()) {
      CAPTURE(p.name);
      CHECK(gradcheck("based " + p.name, loss, {p.tensor}, {1e-6, 1e-5, 1e-9}) <= 1.0);
    }
  }
}

TEST_CASE("based: chunked, parallel and recurrent Taylor kernels give the same logits (f64)") {
  Tensor ids = Tensor::from_vector<int32_t>({1, 5, 2, 7, 3, 0, 10, 4, 4, 6, 9, 8, 2, 2}, {2, 7});
  std::vector<std::vector<double>> out;
  for (const char* impl : {"parallel", "recurrent", "chunked"}) {
    ModelConfig c = three_mixers(DType::f64);
    c.options.set("taylor_kernel", std::string(impl));
    Generator gen(7);
    auto model = build_model(c, gen);
    NoGradGuard no_grad;
    out.push_back(model->forward(ids).logits.to_f64_vector());
  }
  CHECK(rel_error(out[1], out[0]) < 1e-12);
  CHECK(rel_error(out[2], out[0]) < 1e-12);
}

TEST_CASE("based: FLOPs per token count each layer's own mixer, the Taylor kernel's as it runs") {
  const int64_t T = 10, D = 8, H = 2, e = 4, f = 3, F = 12;
  using flops::Pass;
  const double others = 2.0 * D * 11 + 3 * 3 * 2.0 * D * F +                         // head, 3 SwiGLUs
                        2.0 * D * 4 * D + 2.0 * 2 * D * D + 2.0 * 2 * D * 3 +       // BaseConv
                        2 * 2.0 * D * H * f + 2 * 2.0 * D * D +                      // Taylor's projections
                        4 * 2.0 * D * D + flops::attention(1, T, H, e, e, true, 2, Pass::forward) / T;  // window
  for (const char* impl : {"chunked", "parallel"}) {
    CAPTURE(impl);
    ModelConfig c = three_mixers(DType::f32);
    c.options.set("taylor_kernel", std::string(impl));
    Generator gen(8);
    auto model = build_model(c, gen);
    const double taylor = std::string(impl) == "parallel" ? flops::taylor_parallel(1, T, H, f, e, Pass::forward)
                                                          : flops::taylor_chunked(1, T, H, f, e, 2, Pass::forward);
    CHECK(model->train_flops_per_token(T) == doctest::Approx(3 * (others + taylor / T)));
  }
}

TEST_CASE("based: decoding token by token (Taylor states, the window's keys and values, the conv tail) gives the full forward's logits (f64)") {
  for (const char* impl : {"chunked", "recurrent"}) {
    CAPTURE(impl);
    ModelConfig c = three_mixers(DType::f64);
    c.options.set("taylor_kernel", std::string(impl));
    Generator gen(9);
    auto model = build_model(c, gen);
    models::Based& based = as_based(model);
    const std::vector<int32_t> seq = {1, 5, 2, 7, 3, 0, 10, 4, 9};
    NoGradGuard no_grad;
    const auto full = model->forward(Tensor::from_vector<int32_t>(seq, {1, 9})).logits.to_f64_vector();
    models::BasedDecodeState state;
    std::vector<double> stepped;
    for (int32_t id : seq) {
      auto v = based.forward_with_state(Tensor::from_vector<int32_t>({id}, {1, 1}), state).to_f64_vector();
      stepped.insert(stepped.end(), v.begin(), v.end());
    }
    CHECK(rel_error(stepped, full) < 1e-10);
    CHECK(state.position == 9);
    CHECK(state.layers[2].window.keys.size(1) == 2);       // the window: 2 keys back
    CHECK(state.layers[0].conv_tail.size(1) == 2);  // kernel 3: 2 inputs back
    // A prompt of 5 in one call, then one token at a time.
    models::BasedDecodeState st2;
    std::vector<double> mixed = based.forward_with_state(Tensor::from_vector<int32_t>({1, 5, 2, 7, 3}, {1, 5}), st2).to_f64_vector();
    for (int32_t id : {0, 10, 4, 9}) {
      auto v = based.forward_with_state(Tensor::from_vector<int32_t>({id}, {1, 1}), st2).to_f64_vector();
      mixed.insert(mixed.end(), v.begin(), v.end());
    }
    CHECK(rel_error(mixed, full) < 1e-10);
  }
  Generator gen(10);
  auto model = build_model(three_mixers(DType::f64), gen);
  models::BasedDecodeState state;
  CHECK_THROWS_WITH_AS(as_based(model).forward_with_state(Tensor::from_vector<int32_t>({1}, {1, 1}), state),
                       "based: forward_with_state decodes without gradients (use NoGradGuard)", Error);
}
