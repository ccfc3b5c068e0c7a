#pragma once
// Modules own named parameters and child modules. Names are hierarchical, dot-separated, in
// registration order ("layers.3.attn.q_proj.weight"), so checkpoints and optimisers address
// parameters by name.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/tensor.h"

namespace eat {

// What a parameter is, for rules such as "no weight decay on norms, biases and embeddings".
enum class ParamKind { weight, bias, norm, embedding };
const char* param_kind_name(ParamKind kind);

struct Parameter {
  std::string name;
  Tensor tensor;
  ParamKind kind;
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its children, depth first in registration order.
  std::vector<Parameter> parameters() const;
  int64_t num_parameters() const;
  // The parameter with this full name; an error lists the closest names when it does not exist.
  Tensor parameter(const std::string& name) const;
  void zero_grad() const;
  // Moves every parameter (and any gradient it holds) to `device` in place: Tensor handles held
  // by layers, parameter lists and optimizers stay valid. Build the optimizer afterwards, so its
  // state is created on the same device.
  void to_(Device device) const;
  // Every descendant module (not this one) with its dotted path ("layers.2.attn"), depth first in
  // registration order: how generic code finds the modules of a kind, e.g. the sequence mixers.
  std::vector<std::pair<std::string, Module*>> descendants() const;

 protected:
  Tensor add_parameter(const std::string& name, Tensor value, ParamKind kind);
  template <typename M, typename... Args>
  M& add_module(const std::string& name, Args&&... args) {
    return adopt_module(name, std::make_unique<M>(std::forward<Args>(args)...));
  }
  // A child made elsewhere (by a factory a family passes in), registered like add_module's.
  template <typename M>
  M& adopt_module(const std::string& name, std::unique_ptr<M> child) {
    M& ref = *child;
    children_.emplace_back(name, std::move(child));
    return ref;
  }

 private:
  void collect(const std::string& prefix, std::vector<Parameter>& out) const;
  void collect_modules(const std::string& prefix, std::vector<std::pair<std::string, Module*>>& out) const;
  std::vector<Parameter> own_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
};

// An indexed list of modules: children are named "0", "1", ...
template <typename M>
class ModuleList : public Module {
 public:
  template <typename... Args>
  M& append(Args&&... args) {
    M& m = add_module<M>(std::to_string(items_.size()), std::forward<Args>(args)...);
    items_.push_back(&m);
    return m;
  }
  M& operator[](size_t i) const { return *items_.at(i); }
  size_t size() const { return items_.size(); }

 private:
  std::vector<M*> items_;
};

}  // namespace eat
