#include "framework/autograd.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "framework/ops.h"
#include "framework/profiler.h"

namespace eat {

namespace {

thread_local bool g_grad_enabled = true;
// The gradients summed so far for the inputs of the node whose backward is running, where they
// are nobody else's (gradient_so_far).
thread_local std::vector<Tensor>* g_sums_so_far = nullptr;

struct ClosureNode final : Node {
  ClosureNode(std::string op, int n_outputs, BackwardFn f) : Node(std::move(op), n_outputs), fn(std::move(f)) {}
  std::vector<Tensor> backward(const std::vector<Tensor>& grad_outputs) override {
    EAT_CHECK(fn, "backward through '", name,
              "' a second time: its saved tensors were freed by the first backward()");
    return fn(grad_outputs);
  }
  void release_saved() override { fn = nullptr; }
  BackwardFn fn;
};

// Whether no other tensor shares t's data: t is the last handle, and its storage has no other view.
bool sole_handle(const Tensor& t) { return t.impl_ptr().use_count() == 1 && t.impl().storage.use_count() == 1; }

// Where one input of a node sends its gradient: the node that made it (and which of its outputs
// it is), or the leaf itself; its shape and type for the checks.
struct Route {
  bool defined = false;
  std::shared_ptr<Node> grad_fn;
  int output_nr = 0;
  Tensor leaf;
  Shape shape;
  DType dtype = DType::f32;

  static Route of(const Tensor& in) {
    Route r;
    if (!in.defined()) return r;
    r.defined = true;
    r.grad_fn = in.impl().grad_fn;
    r.output_nr = in.impl().output_nr;
    if (!r.grad_fn) r.leaf = in;
    r.shape = in.shape();
    r.dtype = in.dtype();
    return r;
  }
};

// Sums a gradient into a slot. The first gradient is stored as is; a later one is added in place
// when the slot's tensor is nobody else's (no new tensor to allocate and write), else into a new
// tensor, so a gradient tensor that an op handed to two inputs is never modified in place.
void accumulate(Tensor& slot, const Tensor& g) {
  if (!slot.defined()) {
    slot = g;
  } else if (sole_handle(slot)) {
    add_into(slot, g);
  } else {
    slot = add(slot, g);
  }
}

// g itself when no other tensor shares its data, else a copy.
Tensor owned_or_clone(Tensor g) { return sole_handle(g) ? g : g.clone(); }

// Nodes reachable from `root`, parents before children (reverse post-order of a DFS). Owning
// pointers: the pass frees each node's inputs as it goes, which would otherwise free its children.
std::vector<std::shared_ptr<Node>> topological_order(const std::shared_ptr<Node>& root) {
  std::vector<std::shared_ptr<Node>> post;
  std::unordered_set<Node*> seen{root.get()};
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    if (next < node->inputs.size()) {
      const Tensor& in = node->inputs[next++];
      if (in.defined() && in.impl().grad_fn) {
        const std::shared_ptr<Node>& child = in.impl().grad_fn;
        if (seen.insert(child.get()).second) stack.push_back({child, 0});
      }
    } else {
      post.push_back(node);
      stack.pop_back();
    }
  }
  return {post.rbegin(), post.rend()};
}

}  // namespace

namespace autograd {

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

bool needs_record(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_record(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record_node(std::shared_ptr<Node> node, const std::vector<Tensor>& outputs) {
  // Inputs that need no gradient are dropped so the graph does not keep them alive.
  for (Tensor& in : node->inputs)
    if (in.defined() && !in.requires_grad()) in = Tensor();
  for (size_t i = 0; i < outputs.size(); ++i) {
    TensorImpl& impl = outputs[i].impl();
    impl.grad_fn = node;
    impl.output_nr = static_cast<int>(i);
    impl.requires_grad = true;
  }
}

void record(const std::string& op_name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            BackwardFn backward) {
  auto node = std::make_shared<ClosureNode>(op_name, static_cast<int>(outputs.size()), std::move(backward));
  node->inputs = inputs;
  record_node(std::move(node), outputs);
}

Tensor gradient_so_far(size_t input) {
  if (!g_sums_so_far || input >= g_sums_so_far->size()) return Tensor();
  return (*g_sums_so_far)[input];
}

Tensor grad_or_zeros(const std::vector<Tensor>& grads, size_t i, const Shape& shape, DType dtype, Device device) {
  if (i < grads.size() && grads[i].defined()) return grads[i];
  return Tensor::zeros(shape, dtype, device);
}

void run_backward(const Tensor& root, const Tensor& seed) {
  NoGradGuard no_grad;  // the backward pass itself is not differentiated
  check_same_shape("backward (seed gradient)", root, seed);
  TensorImpl& root_impl = root.impl();
  if (!root_impl.grad_fn) {
    EAT_CHECK(root_impl.requires_grad, "backward() on a tensor that does not require grad");
    Tensor g = root_impl.grad ? add(Tensor(root_impl.grad), seed) : seed.clone();
    root_impl.grad = g.impl_ptr();
    return;
  }

  std::vector<std::shared_ptr<Node>> order = topological_order(root_impl.grad_fn);
  std::unordered_map<Node*, std::vector<Tensor>> pending;
  pending[root_impl.grad_fn.get()].resize(root_impl.grad_fn->num_outputs);
  pending[root_impl.grad_fn.get()][root_impl.output_nr] = seed;

  for (const std::shared_ptr<Node>& node : order) {
    auto it = pending.find(node.get());
    std::vector<Tensor> grad_outputs;
    if (it != pending.end()) {
      grad_outputs = std::move(it->second);
      pending.erase(it);
    }
    bool any = false;
    for (const Tensor& g : grad_outputs) any |= g.defined();
    if (any) {
      grad_outputs.resize(node->num_outputs);
      // What each input's gradient sums to so far, where an op may add into it (gradient_so_far).
      std::vector<Tensor> sums_so_far(node->inputs.size());
      for (size_t j = 0; j < node->inputs.size(); ++j) {
        const Tensor& in = node->inputs[j];
        if (!in.defined() || !in.impl().grad_fn) continue;
        auto slots = pending.find(in.impl().grad_fn.get());
        if (slots == pending.end() || in.impl().output_nr >= static_cast<int>(slots->second.size())) continue;
        const Tensor& sum = slots->second[in.impl().output_nr];
        if (sum.defined() && sole_handle(sum)) sums_so_far[j] = sum;
      }
      // Where each input's gradient goes, and then the inputs let go: a non-leaf input's data is
      // now held only by what the op saved for its backward, which may then write its gradient
      // over it (autograd::only_holder).
      std::vector<Route> routes;
      routes.reserve(node->inputs.size());
      for (const Tensor& in : node->inputs) routes.push_back(Route::of(in));
      node->inputs.clear();
      std::vector<Tensor> grad_inputs;
      {
        const auto first = std::find_if(grad_outputs.begin(), grad_outputs.end(), [](const Tensor& g) { return g.defined(); });
        profiler::BackwardScope timed(node->name, first->device());
        g_sums_so_far = &sums_so_far;
        struct Reset {
          ~Reset() { g_sums_so_far = nullptr; }
        } reset;
        grad_inputs = node->backward(grad_outputs);
      }
      sums_so_far.clear();  // the slots are again their gradients' only handles
      EAT_CHECK(grad_inputs.size() == routes.size(), "autograd: op '", node->name, "' returned ",
                grad_inputs.size(), " gradients for ", routes.size(), " inputs");
      for (size_t j = 0; j < grad_inputs.size(); ++j) {
        const Route& in = routes[j];
        Tensor& g = grad_inputs[j];
        if (!in.defined || !g.defined()) continue;
        EAT_CHECK(g.shape() == in.shape && g.dtype() == in.dtype, "autograd: op '", node->name,
                  "' produced a gradient ", g.describe(), " for input ", j, " of ", dtype_name(in.dtype),
                  shape_str(in.shape));
        if (in.grad_fn) {
          auto& slots = pending[in.grad_fn.get()];
          slots.resize(in.grad_fn->num_outputs);
          Tensor& slot = slots[in.output_nr];
          if (slot.defined() && slot.impl_ptr() == g.impl_ptr()) continue;  // the op added into it
          accumulate(slot, g);
        } else {
          TensorImpl& in_impl = in.leaf.impl();
          // Leaf: its gradient must be its own, because optimisers scale gradients in place. A
          // gradient nothing else refers to (the common case: a fresh dW) is taken as is; a
          // clone would cost a pass over every parameter's gradient per step.
          Tensor leaf_grad = in_impl.grad ? add(Tensor(in_impl.grad), g) : owned_or_clone(std::move(g));
          in_impl.grad = leaf_grad.impl_ptr();
        }
      }
    }
    node->release_saved();
    node->inputs.clear();
  }
}

bool only_holder(const Tensor& t) { return t.defined() && sole_handle(t); }

Tensor reuse_or_new(const Tensor& t) { return only_holder(t) ? t : Tensor::empty_like(t); }

}  // namespace autograd
}  // namespace eat
