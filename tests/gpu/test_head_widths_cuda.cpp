// Head widths between the 64- and 128-wide layouts (65 to 127, q/k and v widths differing) through
// softmax attention and Lightning on CUDA, f32 and bf16, against the CPU (op_parity.h: output and
// every gradient, NaN-poisoned, 1e-5 / 1e-2); and the first width past the kernels' limit of 128
// refused with the value.
#include <doctest/doctest.h>

#include <utility>
#include <vector>

#include "framework/ops.h"
#include "gpu/gpu_guard.h"
#include "gpu/op_parity.h"

using namespace eat;
using namespace eat::test;

namespace {

// (d, e) pairs: the ends of the range, widths that are and are not multiples of 16, d != e.
const std::vector<std::pair<int64_t, int64_t>> kWidths{{65, 127}, {72, 96}, {80, 80}, {96, 72},
                                                       {100, 113}, {112, 65}, {127, 127}};

}  // namespace

TEST_CASE("cuda attention: head widths 65 to 127 match the CPU (causal and not, f32 and bf16)") {
  test::require_gpu();
  Generator gen(2230);
  const int64_t B = 2, T = 70, H = 2;  // rows with few keys are a small part (see test_attention_cuda.cpp)
  for (auto [d, e] : kWidths)
    for (bool causal : {true, false})
      for (DType dtype : {DType::f32, DType::bf16}) {
        CAPTURE(d);
        CAPTURE(e);
        CAPTURE(causal);
        CAPTURE(dtype_name(dtype));
        AttentionOptions options;
        options.causal = causal;
        const std::vector<Tensor> host{random_host({B, T, H, d}, gen), random_host({B, T, H, d}, gen),
                                       random_host({B, T, H, e}, gen)};
        check_op_on_device([&](const std::vector<Tensor>& in) { return attention(in[0], in[1], in[2], options); }, host,
                           dtype, tolerance(dtype), gen, "attention");
      }
}

TEST_CASE("cuda lightning: head widths 65 to 127 match the CPU (output and final state, f32 and bf16)") {
  test::require_gpu();
  Generator gen(2231);
  const int64_t B = 2, T = 100, H = 2;  // two chunks, the second partial
  const std::vector<double> decay{0.95, 0.8};
  for (auto [d, e] : kWidths)
    for (DType dtype : {DType::f32, DType::bf16}) {
      CAPTURE(d);
      CAPTURE(e);
      CAPTURE(dtype_name(dtype));
      // The op table's scales for Lightning (framework/op_cases/lightning.cpp).
      const std::vector<Tensor> host{random_host({B, T, H, d}, gen, 0.5), random_host({B, T, H, d}, gen, 0.5),
                                     random_host({B, T, H, e}, gen), random_host({B, H, d, e}, gen)};
      for (int output : {0, 1}) {
        CAPTURE(output);
        check_op_on_device(
            [&](const std::vector<Tensor>& in) {
              auto [o, final_state] = lightning_attention(in[0], in[1], in[2], decay, in[3]);
              return output == 0 ? o : final_state;
            },
            host, dtype, tolerance(dtype), gen, output == 0 ? "lightning o" : "lightning final state");
      }
    }
}

TEST_CASE("cuda attention and lightning: head width 129 is refused with the value") {
  test::require_gpu();
  Generator gen(2232);
  for (DType dtype : {DType::f32, DType::bf16}) {
    Tensor wide = to_device(random_host({1, 8, 1, 129}, gen), dtype), narrow = to_device(random_host({1, 8, 1, 64}, gen), dtype);
    CHECK_THROWS_WITH_AS(attention(wide, wide, narrow), doctest::Contains("d = 129"), Error);
    CHECK_THROWS_WITH_AS(attention(narrow, narrow, wide), doctest::Contains("e = 129"), Error);
    CHECK_THROWS_WITH_AS(lightning_attention(wide, wide, narrow, {0.9}), doctest::Contains("d = 129"), Error);
    CHECK_THROWS_WITH_AS(lightning_attention(narrow, narrow, wide, {0.9}), doctest::Contains("e = 129"), Error);
  }
}
