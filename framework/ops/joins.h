#pragma once
// The differentiable ops of a joined projection (several Linear layers over one input run as one
// GEMM, framework/nn/joined_linear.h): joining their weights, and handing its consumers the
// joined output's columns.
#include <vector>

#include "framework/ops.h"

namespace eat {

// The parts' rows one after another ([n_i, ...] -> [sum n_i, ...]): a view, no copy, when the
// parts already lie one after another in one storage (joined parameters), else a copy. Each
// part's gradient is its rows of the join's.
Tensor concat_outer(const std::vector<Tensor>& parts);

// x [..., sum sizes] -> one contiguous copy per width: columns [s_0 + ... + s_{i-1}, + s_i) of
// the last axis. The gradient puts each part's back in its columns (zeros for a part that did
// not reach the loss).
std::vector<Tensor> split_last(const Tensor& x, const std::vector<int64_t>& sizes);

// What linear_split does to one part once the product has made it: nothing, or RoPE (ops.h's rope
// over the part seen as [B, T, heads, width / heads], x [B, T, in]: attention's q and k).
struct PartThen {
  enum class Op { none, rope };
  Op op = Op::none;
  int64_t heads = 0;
  double theta = 10000.0;
  int64_t offset = 0, chunk = 1;

  static PartThen rope(int64_t heads, double theta, int64_t offset = 0, int64_t chunk = 1) {
    return {Op::rope, heads, theta, offset, chunk};
  }
};

// x [..., in] -> the outputs of a joined projection's layers, each its own tensor:
// split_last(linear(x, weight, bias), sizes), with the same bits, and then part i through then[i]
// where given (each part [..., width] as the product made it). Where the CPU's packed GEMM runs
// the product, it writes each part where it goes and the joined output is never made (one copy of
// it fewer per pass), and it rotates a tile of rows as it finishes them, in cache, with the bits
// of rope and none of its pass over memory (3-4% off the projection and its RoPE together). The
// gradient comes back through the parts' ops and joined, for linear's backward. (SiLU made the
// same way, TransNormerLLM's q and k, measured no faster than its own pass, which reads the parts
// back from the last-level cache.)
std::vector<Tensor> linear_split(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                 const std::vector<int64_t>& sizes, const std::vector<PartThen>& then = {});

// glu_gate (ops.h) on the two halves of ab's last axis, [..., 2n] -> [..., n]: a = ab[..., :n],
// b = ab[..., n:], as a joined gate-and-up projection leaves them. No copy splits them, and the
// gradient comes back joined for that projection's one backward GEMM.
Tensor glu_gate_halves(const Tensor& ab, GateActivation act);

// A gated MLP, linear(glu_gate_halves(linear(x, gate_up), act), down, Tensor(), residual), with the
// same bits and gradients in one op: gate_up [2n, in] the joined gate and up projections, down
// [out, n], no biases, the residual optional. Where the CPU's packed GEMM runs the products
// (kernels/glu_gate.h), the gate is made from each tile of the joined projection's rows as it is
// finished, and in the backward the gate's gradient from each tile of the down projection's input
// gradient: neither the projection [..., 2n] in the forward nor that gradient [..., n] in the
// backward is read back from memory.
Tensor gated_mlp(const Tensor& x, const Tensor& gate_up, const Tensor& down, const Tensor& residual,
                 GateActivation act);

}  // namespace eat
