#pragma once
// One table of op cases, in the manner of ggml's test-backend-ops: every row is one differentiable
// op (or one form of it) called through framework/ops.h, with the shapes it is checked and timed
// at, its f64 reference, its tolerances and its FLOP formula. The table drives the CPU kernel
// tests (tests/kernels/test_op_table.cpp), the CUDA-against-CPU tests
// (tests/gpu/test_op_table_cuda.cpp) and `eat bench ops` (app/bench_ops.cpp), so a new op adds
// rows here, not test files or bench code. One file per op family holds its rows.
#include <functional>
#include <string>
#include <vector>

#include "base/random.h"
#include "framework/comm/communicator.h"
#include "framework/tensor.h"

namespace eat::op_cases {

// How one input is drawn: normal(0, stddev), or uniform in [0.5, 1.5] where a relative error of a
// sum that cancels to nearly zero would measure the cancellation, not the kernel. Every input is
// floating point and differentiable; integer inputs (ids, targets) are built inside the call from
// the shapes (fixed_ids), the same on every device.
struct Input {
  Shape shape;
  double stddev = 1.0;
  bool positive = false;
};
inline Input normal(Shape shape, double stddev = 1.0) { return {std::move(shape), stddev, false}; }
inline Input positive(Shape shape) { return {std::move(shape), 1.0, true}; }

// One set of input shapes.
using Sizes = std::vector<Input>;

// The op on inputs of any float dtype and device; returns one tensor (ops with two outputs get a
// row per output).
using Call = std::function<Tensor(const std::vector<Tensor>&)>;
// The same op in its sequence-parallel form (framework/parallel/), on this rank's share of the
// sequence; in a group of one it must equal the op.
using SpCall = std::function<Tensor(const std::vector<Tensor>&, Communicator&)>;
// FLOPs of one forward+backward call at these input shapes (framework/flops.h).
using Flops = std::function<double(const std::vector<Shape>&)>;

// Relative errors (tests/rel_error.h) each check allows.
struct Tolerances {
  double reference = 1e-14;  // the op against its f64 reference, both in f64 (at most 3e-15 seen)
  double f32 = 1e-6;         // f32 outputs and input gradients against f64 (elementwise: f32 rounding)
  double cuda_f32 = 1e-5;    // CUDA f32 against the CPU f32 kernel
  double cuda_bf16 = 1e-2;   // CUDA bf16 against the CPU f32 kernel on the same bf16-rounded inputs
};

struct OpCase {
  std::string name;  // unique, what `eat bench ops --op` selects: "attention window"
  Call call;
  // A naive f64 computation of call's output (a loop over the definition, or the op's naive
  // kernel), or none where the row is itself the naive kernel (its own test checks it).
  Call reference;
  std::vector<Sizes> small;   // awkward shapes (T not a multiple of the block, one head, batch 1,
                              // d != e): reference and central-difference gradients in f64
  std::vector<Sizes> medium;  // f32 against f64, and CUDA against the CPU
  std::vector<Sizes> bench;   // `eat bench ops`; --quick takes the first only
  Tolerances tol;
  Flops flops;  // none for ops without matmul-like work (pointwise, rows, gathers)
  bool cuda = true;  // has CUDA kernels (forward and backward)
  SpCall sp;         // none when the op has no sequence-parallel form
};

// The whole table, in family order; names are unique.
const std::vector<OpCase>& all();
// The row named `name`, or an error listing the names.
const OpCase& find(const std::string& name);

// Draws inputs for `sizes` in `dtype` on the CPU (no gradients requested).
std::vector<Tensor> draw(const Sizes& sizes, Generator& gen, DType dtype = DType::f64);
std::vector<Shape> shapes_of(const std::vector<Tensor>& inputs);
std::vector<Shape> shapes_of(const Sizes& sizes);
// "[2, 9, 3, 4] [2, 9, 3, 5]"
std::string describe(const Sizes& sizes);

// Integer ids of `shape` drawn from [0, vocab) by a fixed generator (the same ids for the same
// shape, so the CPU and the device see the same; more ids than the vocabulary repeat, and a
// backward must sum rows), i64 on the CPU; every `ignore_every`-th one (when > 0) is `ignored`.
Tensor fixed_ids(const Shape& shape, int64_t vocab, int64_t ignore_every = 0, int64_t ignored = -100);

// The rows of each op family (one file each); all() concatenates them.
std::vector<OpCase> pointwise_cases();
std::vector<OpCase> norm_cases();
std::vector<OpCase> product_cases();
std::vector<OpCase> sequence_cases();
std::vector<OpCase> attention_cases();
std::vector<OpCase> lightning_cases();
std::vector<OpCase> taylor_cases();
std::vector<OpCase> chunk_scan_cases();         // RAT's gated scan
std::vector<OpCase> summary_attention_cases();  // RAT's attention over chunk summaries
std::vector<OpCase> moh_gates_cases();          // MoH's router
std::vector<OpCase> gated_attention_cases();    // MoH's query-sparse attention
std::vector<OpCase> linear_memory_cases();      // Titans' linear memory
std::vector<OpCase> mlp_memory_cases();         // Titans' two-layer MLP memory
std::vector<OpCase> join_cases();               // joined projections' ops (several Linear layers as one GEMM)

}  // namespace eat::op_cases
