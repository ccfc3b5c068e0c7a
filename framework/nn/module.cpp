#include "framework/nn/module.h"

#include <map>

#include "base/error.h"

namespace eat {

const char* param_kind_name(ParamKind kind) {
  switch (kind) {
    case ParamKind::weight: return "weight";
    case ParamKind::bias: return "bias";
    case ParamKind::norm: return "norm";
    case ParamKind::embedding: return "embedding";
  }
  return "?";
}

Tensor Module::add_parameter(const std::string& name, Tensor value, ParamKind kind) {
  for (const Parameter& p : own_) EAT_CHECK(p.name != name, "module: parameter '", name, "' registered twice");
  value.requires_grad_(true);
  own_.push_back({name, value, kind});
  return value;
}

void Module::collect(const std::string& prefix, std::vector<Parameter>& out) const {
  for (const Parameter& p : own_) out.push_back({prefix + p.name, p.tensor, p.kind});
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

void Module::collect_modules(const std::string& prefix, std::vector<std::pair<std::string, Module*>>& out) const {
  for (const auto& [name, child] : children_) {
    out.emplace_back(prefix + name, child.get());
    child->collect_modules(prefix + name + ".", out);
  }
}

std::vector<std::pair<std::string, Module*>> Module::descendants() const {
  std::vector<std::pair<std::string, Module*>> out;
  collect_modules("", out);
  return out;
}

std::vector<Parameter> Module::parameters() const {
  std::vector<Parameter> out;
  collect("", out);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const Parameter& p : parameters()) n += p.tensor.numel();
  return n;
}

Tensor Module::parameter(const std::string& name) const {
  std::vector<Parameter> all = parameters();
  for (const Parameter& p : all)
    if (p.name == name) return p.tensor;
  std::string known;
  for (size_t i = 0; i < all.size() && i < 8; ++i) known += (i ? ", " : "") + all[i].name;
  fail("no parameter named '", name, "' (this module has ", all.size(), " parameters: ", known,
       all.size() > 8 ? ", ..." : "", ")");
}

void Module::to_(Device device) const {
  // Parameters that share one storage (a joined projection's weights, JoinedLinear) move it once
  // and keep sharing it there, so their join stays a free view.
  std::map<const Storage*, std::shared_ptr<Storage>> moved;
  for (const Parameter& p : parameters()) {
    TensorImpl& impl = p.tensor.impl();
    if (p.tensor.device() != device) {
      std::shared_ptr<Storage>& there = moved[impl.storage.get()];
      if (!there) {
        const Storage& here = *impl.storage;
        there = std::make_shared<Storage>(here.nbytes(), device);
        copy_bytes(there->data(), device, here.data(), here.device(), here.nbytes());
      }
      impl.storage = there;
    }
    if (p.tensor.grad().defined()) p.tensor.grad().move_to_(device);
  }
}

void Module::zero_grad() const {
  for (const Parameter& p : parameters()) p.tensor.zero_grad();
}

}  // namespace eat
