// Views that start at an odd element: slice_outer(parent, 1, n + 1) of a parent whose rows hold an
// odd number of elements, so in bf16 the view's first element is only 2-byte aligned (in f32,
// 4-byte), never 16: cuBLAS (linear, matmul, batched matmul) and the kernels that load rows
// (norms, softmax, activations, rope, short convolution, cross-entropy, attention, Lightning and
// the state ops) must read and write through such pointers. Each op runs on views of the same
// parents on both devices against the CPU (op_parity.h: output and every parent's gradient, whose
// row 0 stays zero, NaN-poisoned, 1e-5 / 1e-2).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "framework/ops.h"
#include "gpu/gpu_guard.h"
#include "gpu/op_parity.h"

using namespace eat;
using namespace eat::test;

namespace {

// Rows [1, size(0)) of x: the parent without its first row.
Tensor tail(const Tensor& x) { return slice_outer(x, 1, x.size(0)); }

struct ViewCase {
  std::string name;
  std::vector<Shape> parents;  // every input is a parent whose first row the call drops
  std::vector<double> stddev;  // per input (1 when missing)
  op_cases::Call call;
};

std::vector<ViewCase> view_cases() {
  const std::vector<double> decay{0.9, 0.7, 0.99};
  auto targets_for = [](const Tensor& logits) {
    std::vector<int64_t> t(static_cast<size_t>(logits.size(0)));
    for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<int64_t>((i * 37 + 5) % static_cast<size_t>(logits.size(1)));
    return Tensor::from_vector<int64_t>(t, {logits.size(0)}).to(logits.device());
  };
  return {
      // cuBLAS: odd leading dimensions and 2-byte-aligned operands and bias.
      {"linear", {{24, 37}, {20, 37}, {20}}, {}, [](auto& in) { return linear(tail(in[0]), tail(in[1]), tail(in[2])); }},
      {"matmul", {{18, 33}, {34, 29}}, {}, [](auto& in) { return matmul(tail(in[0]), tail(in[1])); }},
      {"matmul transposed", {{34, 17}, {22, 33}}, {}, [](auto& in) { return matmul(tail(in[0]), tail(in[1]), true, true); }},
      {"batched matmul", {{4, 7, 13}, {4, 13, 9}}, {}, [](auto& in) { return matmul(tail(in[0]), tail(in[1])); }},
      {"batched matmul, shared B", {{4, 7, 13}, {14, 11}}, {}, [](auto& in) { return matmul(tail(in[0]), tail(in[1])); }},
      // Row kernels.
      {"rms_norm", {{12, 33}, {2, 33}}, {}, [](auto& in) { return rms_norm(tail(in[0]), slice_outer(in[1], 1, 2).reshape({33}), 1e-5); }},
      {"l2_normalize", {{12, 33}}, {}, [](auto& in) { return l2_normalize(tail(in[0]), 1e-6); }},
      {"softmax", {{12, 33}}, {}, [](auto& in) { return softmax(tail(in[0])); }},
      {"silu * add", {{12, 33}, {12, 33}}, {}, [](auto& in) { return add(silu(tail(in[0])), tail(in[1])); }},
      {"gelu * mul", {{12, 33}, {12, 33}}, {}, [](auto& in) { return mul(gelu(tail(in[0])), tail(in[1])); }},
      {"glu_gate", {{12, 33}, {12, 33}}, {}, [](auto& in) { return glu_gate(tail(in[0]), tail(in[1]), GateActivation::silu); }},
      {"short_conv", {{3, 9, 7}, {8, 4}, {8}}, {},
       [](auto& in) { return short_conv(tail(in[0]), slice_outer(in[1], 1, 8), tail(in[2])); }},
      {"cross_entropy", {{10, 37}}, {3.0}, [targets_for](auto& in) {
         Tensor logits = tail(in[0]);
         return cross_entropy(logits, targets_for(logits));
       }},
      // [B, T, H, d] heads: a batch holds T * H * d = 7 * 3 * 33 elements (odd); rope needs d even
      // and gets 7 * 3 * 34 (4-byte aligned in bf16, never 16).
      {"rope", {{3, 7, 3, 34}}, {}, [](auto& in) { return rope(tail(in[0])); }},
      {"attention", {{3, 7, 3, 33}, {3, 7, 3, 33}, {3, 7, 3, 33}}, {},
       [](auto& in) { return attention(tail(in[0]), tail(in[1]), tail(in[2])); }},
      {"attention, non-causal", {{3, 7, 3, 33}, {3, 7, 3, 33}, {3, 7, 3, 33}}, {}, [](auto& in) {
         AttentionOptions o;
         o.causal = false;
         return attention(tail(in[0]), tail(in[1]), tail(in[2]), o);
       }},
      {"lightning o", {{3, 7, 3, 33}, {3, 7, 3, 33}, {3, 7, 3, 33}, {3, 3, 33, 33}}, {0.5, 0.5, 1.0, 1.0},
       [decay](auto& in) { return lightning_attention(tail(in[0]), tail(in[1]), tail(in[2]), decay, tail(in[3])).first; }},
      {"lightning final state", {{3, 7, 3, 33}, {3, 7, 3, 33}, {3, 7, 3, 33}, {3, 3, 33, 33}}, {0.5, 0.5, 1.0, 1.0},
       [decay](auto& in) { return lightning_attention(tail(in[0]), tail(in[1]), tail(in[2]), decay, tail(in[3])).second; }},
      {"decayed_state_sum", {{3, 7, 3, 33}, {3, 7, 3, 33}}, {0.5, 1.0},
       [decay](auto& in) { return decayed_state_sum(tail(in[0]), tail(in[1]), decay); }},
      {"decayed_state_readout", {{3, 7, 3, 33}, {3, 3, 33, 33}}, {0.5, 1.0},
       [decay](auto& in) { return decayed_state_readout(tail(in[0]), tail(in[1]), decay); }},
  };
}

}  // namespace

TEST_CASE("cuda ops on odd-offset views from slice_outer match the CPU (cuBLAS and kernels, f32 and bf16)") {
  test::require_gpu();
  Generator gen(2250);
  for (const ViewCase& c : view_cases())
    for (DType dtype : {DType::f32, DType::bf16}) {
      CAPTURE(c.name);
      CAPTURE(dtype_name(dtype));
      std::vector<Tensor> host;
      for (size_t i = 0; i < c.parents.size(); ++i)
        host.push_back(random_host(c.parents[i], gen, i < c.stddev.size() ? c.stddev[i] : 1.0));
      check_op_on_device(c.call, host, dtype, tolerance(dtype), gen, c.name);
    }
}
