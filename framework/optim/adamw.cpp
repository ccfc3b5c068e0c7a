#include "framework/optim/adamw.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "framework/dispatch.h"
#include "framework/ops.h"
#include "kernels/adamw.h"
#include "kernels/elementwise.h"

namespace eat {

bool decay_matrices_only(const Parameter& p) { return p.kind == ParamKind::weight; }

DecayRule decay_rule(std::vector<ParamKind> kinds, std::vector<std::string> exclude) {
  return [kinds = std::move(kinds), exclude = std::move(exclude)](const Parameter& p) {
    if (std::find(kinds.begin(), kinds.end(), p.kind) == kinds.end()) return false;
    for (const std::string& pattern : exclude)
      if (p.name.find(pattern) != std::string::npos) return false;
    return true;
  };
}

AdamW::AdamW(std::vector<Parameter> params, AdamWConfig config, DecayRule decays)
    : params_(std::move(params)), config_(config) {
  EAT_CHECK(config.beta1 >= 0 && config.beta1 < 1 && config.beta2 >= 0 && config.beta2 < 1,
            "AdamW: betas must be in [0, 1), got (", config.beta1, ", ", config.beta2, ")");
  EAT_CHECK(config.eps > 0, "AdamW: eps must be positive, got ", config.eps);
  EAT_CHECK(config.weight_decay >= 0, "AdamW: weight_decay must be >= 0, got ", config.weight_decay);
  for (const Parameter& p : params_) {
    EAT_CHECK(!state_.count(p.name), "AdamW: parameter '", p.name, "' given twice");
    decay_[p.name] = decays(p);
    // Moments take the parameter's type on the CPU; on the device they are f32 whatever the
    // parameter's storage type (bf16 moments would lose the small second-moment updates).
    const DType moment = p.tensor.device() == Device::cpu ? p.tensor.dtype() : DType::f32;
    state_[p.name] = State{Tensor::zeros(p.tensor.shape(), moment, p.tensor.device()),
                           Tensor::zeros(p.tensor.shape(), moment, p.tensor.device()), 0};
  }
}

bool AdamW::decays(const std::string& name) const {
  auto it = decay_.find(name);
  EAT_CHECK(it != decay_.end(), "AdamW: no parameter named '", name, "'");
  return it->second;
}

AdamW::State& AdamW::state(const std::string& name) {
  auto it = state_.find(name);
  EAT_CHECK(it != state_.end(), "AdamW: no state for parameter '", name, "'");
  return it->second;
}

namespace {

// The CPU parameters' work of a step goes to one kernel call per element type (kernels/adamw.h):
// a call per parameter would open a parallel region each.
template <template <typename> class List>
using PerCpuType = std::tuple<List<float>, List<double>>;
template <typename T>
using UpdateList = std::vector<cpu::AdamWTensor<T>>;

// The gradients of one element type whose sums of squares are taken together.
template <typename T>
struct SquaresList {
  std::vector<const T*> data;
  std::vector<int64_t> sizes;
  std::vector<double> sums;
  size_t add(const Tensor& g) {
    data.push_back(g.data<T>());
    sizes.push_back(g.numel());
    return data.size() - 1;
  }
  void run() {
    sums.resize(data.size());
    if (!data.empty()) cpu::sums_of_squares(data, sizes, sums.data());
  }
};

}  // namespace

void AdamW::step(double lr, double grad_scale) {
  PerCpuType<UpdateList> cpu_updates;
  bool any_cpu = false;
  for (const Parameter& p : params_) {
    Tensor g = p.tensor.grad();
    if (!g.defined()) continue;
    State& s = state_[p.name];
    ++s.step;
    AdamWStep hyper{lr, config_.beta1, config_.beta2, config_.eps, decay_[p.name] ? config_.weight_decay : 0.0, s.step};
    if (p.tensor.device() == Device::cpu) {
      dispatch_floating("adamw", p.tensor.dtype(), [&]<typename T>() {
        std::get<UpdateList<T>>(cpu_updates)
            .push_back({p.tensor.data<T>(), g.data<T>(), s.m.data<T>(), s.v.data<T>(), p.tensor.numel(), hyper});
      });
      any_cpu = true;
      continue;
    }
    dispatch("adamw", p.tensor, [&]<typename T>() {},  // (CPU parameters went to cpu_updates)
             EAT_CUDA([&]<typename T>() {
               // The device kernel takes the gradient as it is: scale it first.
               if (grad_scale != 1.0) cuda::scale_forward<T>(g.data<T>(), grad_scale, g.data<T>(), g.numel());
               cuda::adamw_update<T>(p.tensor.data<T>(), g.data<T>(), s.m.data<float>(), s.v.data<float>(), nullptr,
                                     p.tensor.numel(), hyper);
             }));
  }
  if (!any_cpu) return;
  profiler::OpScope timed("adamw", Device::cpu);
  std::apply([&](auto&... lists) { ((lists.empty() ? void() : cpu::adamw_update_all(lists, grad_scale)), ...); },
             cpu_updates);
}

void AdamW::zero_grad() {
  for (const Parameter& p : params_) p.tensor.zero_grad();
}

double grad_norm(const std::vector<Parameter>& params) {
  PerCpuType<SquaresList> cpu_squares;
  std::vector<std::pair<DType, size_t>> cpu_order;  // each CPU gradient's list and place in it
  // On the device each gradient's sum of squares lands in its own slot; the slots come back in
  // one read (one sync per step, not one per parameter) and are added on the host in order.
  Tensor device_squares;
  int64_t slot = 0;
  for (const Parameter& p : params) {
    Tensor g = p.tensor.grad();
    if (!g.defined()) continue;
    if (g.device() == Device::cpu) {
      dispatch_floating("clip_grad_norm", g.dtype(), [&]<typename T>() {
        cpu_order.emplace_back(g.dtype(), std::get<SquaresList<T>>(cpu_squares).add(g));
      });
      continue;
    }
    dispatch("clip_grad_norm", g, [&]<typename T>() {},  // (CPU gradients went to cpu_squares)
             EAT_CUDA([&]<typename T>() {
               if (!device_squares.defined())
                 device_squares = Tensor::empty({static_cast<int64_t>(params.size())}, DType::f32, g.device());
               Tensor partial = Tensor::empty({cuda::sum_partials(g.numel())}, DType::f32, g.device());
               cuda::sum_forward<T, float>(g.data<T>(), g.numel(), 1.0f, true, partial.data<float>(),
                                           device_squares.data<float>() + slot);
               ++slot;
             }));
  }
  double total = 0;
  if (!cpu_order.empty()) {
    profiler::OpScope timed("clip_grad_norm", Device::cpu);
    std::apply([](auto&... lists) { (lists.run(), ...); }, cpu_squares);
    for (const auto& [dtype, i] : cpu_order)  // in parameter order
      total += dtype == DType::f32 ? std::get<SquaresList<float>>(cpu_squares).sums[i]
                                   : std::get<SquaresList<double>>(cpu_squares).sums[i];
  }
  if (slot > 0) {
    const std::vector<double> squares = device_squares.to_f64_vector();  // the norm decides on the host whether to clip
    for (int64_t i = 0; i < slot; ++i) total += squares[static_cast<size_t>(i)];
  }
  return std::sqrt(total);
}

double clip_factor(double norm, double max_norm) { return max_norm > 0 && norm > max_norm ? max_norm / (norm + 1e-6) : 1.0; }

double clip_grad_norm(const std::vector<Parameter>& params, double max_norm) {
  const double norm = grad_norm(params), factor = clip_factor(norm, max_norm);
  if (factor != 1.0) {
    for (const Parameter& p : params) {
      Tensor g = p.tensor.grad();
      if (!g.defined()) continue;
      EAT_KERNEL("clip_grad_norm", g, scale_forward, g.data<T>(), factor, g.data<T>(), g.numel());
    }
  }
  return norm;
}

}  // namespace eat
