#include "framework/train/loss_terms.h"

#include <set>

#include "base/error.h"
#include "framework/ops.h"

namespace eat {

namespace {

// Names become metrics.jsonl keys aux_<name>, so they must be plain and must not make "aux_loss".
void check_aux_terms(const std::vector<AuxLoss>& aux) {
  std::set<std::string> seen;
  for (const AuxLoss& a : aux) {
    EAT_CHECK(!a.name.empty() && a.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos,
              "model aux term '", a.name, "': names are lower-case letters, digits and '_'");
    EAT_CHECK(a.name != "loss", "model aux term 'loss': the name is taken by the weighted total aux_loss");
    EAT_CHECK(seen.insert(a.name).second, "model aux term '", a.name, "' is returned twice");
    EAT_CHECK(a.value.defined() && a.value.numel() == 1, "model aux term '", a.name,
              "': the value must hold one element, got ", a.value.defined() ? shape_str(a.value.shape()) : "none");
  }
}

}  // namespace

Tensor in_loss_type(const Tensor& t) { return t.dtype() == DType::bf16 ? cast(t, DType::f32) : t; }

Tensor add_aux_terms(const Tensor& cross_entropy, const std::vector<AuxLoss>& aux) {
  Tensor total = cross_entropy;
  for (const AuxLoss& a : aux)
    if (a.weight != 0)  // weight 0: a statistic, logged only
      total = add(total, scale(reshape(cast(a.value, cross_entropy.dtype()), cross_entropy.shape()), a.weight));
  return total;
}

void ScalarSum::add(const Tensor& scalar, double count) {
  if (scalar.device() == Device::cpu) {
    host_ += scalar.item() * count;  // exact when count is 1
    return;
  }
  Tensor term = count == 1 ? scalar.detach() : scale(scalar.detach(), count);
  device_ = device_.defined() ? eat::add(device_, term) : term;
}

double ScalarSum::value() const { return device_.defined() ? host_ + device_.item() : host_; }

double weighted_aux_total(const std::vector<AuxValue>& aux) {
  double total = 0;
  for (const AuxValue& a : aux) total += a.weight * a.value;
  return total;
}

void AuxSums::add(const std::vector<AuxLoss>& aux, double count) {
  if (!started_) {
    check_aux_terms(aux);
    for (const AuxLoss& a : aux) terms_.push_back({a.name, a.weight, 0});
    sums_.resize(aux.size());
    started_ = true;
  }
  EAT_CHECK(aux.size() == terms_.size(), "the model returned ", aux.size(), " aux terms, after ", terms_.size(),
            " in an earlier forward");
  for (size_t i = 0; i < aux.size(); ++i) {
    EAT_CHECK(aux[i].name == terms_[i].name, "the model returned aux term '", aux[i].name, "' where an earlier forward had '",
              terms_[i].name, "'");
    sums_[i].add(in_loss_type(aux[i].value.detach()), count);
  }
}

std::vector<double> AuxSums::values() const {
  std::vector<double> out;
  for (const ScalarSum& s : sums_) out.push_back(s.value());
  return out;
}

std::vector<AuxValue> AuxSums::means(const std::vector<double>& sums, double count) const {
  std::vector<AuxValue> out = terms_;
  for (size_t i = 0; i < out.size(); ++i) out[i].value = sums[i] / count;
  return out;
}

}  // namespace eat
