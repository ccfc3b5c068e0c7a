#pragma once
// Define-by-run reverse-mode autograd. Every differentiable op records one Node holding the
// tensors its backward needs (detached, so no reference cycles). backward() visits nodes in
// reverse topological order, sums gradients that meet at a tensor, and frees each node's saved
// tensors once it has run. Ops are coarse (a whole attention core is one node), so the
// bookkeeping here is never the bottleneck.
#include <functional>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace eat {

struct Node {
  explicit Node(std::string op_name, int n_outputs = 1) : name(std::move(op_name)), num_outputs(n_outputs) {}
  virtual ~Node() = default;

  // Given d(loss)/d(output_i) (undefined for outputs that did not reach the loss), returns
  // d(loss)/d(input_j) for each input (undefined where that input needs no gradient).
  virtual std::vector<Tensor> backward(const std::vector<Tensor>& grad_outputs) = 0;
  // Frees whatever the node saved for backward.
  virtual void release_saved() {}

  std::string name;
  int num_outputs;
  std::vector<Tensor> inputs;  // the op's differentiable inputs, in backward()'s order
};

// A node whose backward is a closure; the closure (and everything it captured) is destroyed
// after it runs.
using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outputs)>;

namespace autograd {

bool grad_enabled();
void set_grad_enabled(bool on);

// True when grad mode is on and any of the tensors requires a gradient: the op should record.
bool needs_record(std::initializer_list<const Tensor*> inputs);
bool needs_record(const std::vector<Tensor>& inputs);

// Records a node producing `outputs` from `inputs`. `backward` receives one gradient per output
// and returns one per input. Inputs that do not require grad are kept out of the graph.
void record(const std::string& op_name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            BackwardFn backward);
void record_node(std::shared_ptr<Node> node, const std::vector<Tensor>& outputs);

// Runs the backward pass from `root` with seed gradient `seed`.
void run_backward(const Tensor& root, const Tensor& seed);

// Inside an op's backward: the gradient already summed for its input `input` when it is nobody
// else's tensor (undefined otherwise, and outside a backward); it has the input's shape, type and
// device, as every gradient backward() accepts. An op may add its own gradient for that input into
// it and return it: backward() then adds nothing, which saves a tensor and a pass over it (a
// residual stream meets its norm's gradient so in every block). The sum must have the bits of
// g + (the op's own gradient).
Tensor gradient_so_far(size_t input);

// Whether nothing but t holds t's data. Inside an op's backward, true for a tensor the op saved
// when nothing else refers to it any more (backward() lets go of the op's inputs before the op's
// backward runs): the op may then write its input's gradient over it, which saves a tensor and the
// reads a fresh one costs (a gated MLP's gradient over its saved projections).
bool only_holder(const Tensor& t);
// t itself when nothing else holds it (only_holder), else a fresh tensor like it: where a backward
// writes a gradient of t's shape over t if it may (its incoming gradient, or a saved input).
Tensor reuse_or_new(const Tensor& t);

// Returns grads[i] if defined, else zeros of that output's shape (an output that did not reach the
// loss arrives undefined). The shape, not the output, is what a closure keeps, so the graph does
// not hold the output alive.
Tensor grad_or_zeros(const std::vector<Tensor>& grads, size_t i, const Shape& shape, DType dtype, Device device);

}  // namespace autograd

// Evaluation guard: nothing is recorded while one is alive.
class NoGradGuard {
 public:
  NoGradGuard() : prev_(autograd::grad_enabled()) { autograd::set_grad_enabled(false); }
  ~NoGradGuard() { autograd::set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace eat
