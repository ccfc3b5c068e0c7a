#pragma once
// The loss a model trains on and what the trainer and the evaluation report of it: the
// cross-entropy in the loss's type plus the model's weighted aux terms (framework/model.h), and
// the sums of those terms over several forwards.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/model.h"

namespace eat {

// A tensor in the loss's type: a model computing in bf16 hands its logits (and aux terms) to the
// loss in f32 (a differentiable cast), so the log-sum-exp and the loss are f32; others pass unchanged.
Tensor in_loss_type(const Tensor& t);

// cross_entropy + sum of weight * value over the aux terms, in the cross-entropy's type; the
// cross-entropy itself when there are none.
Tensor add_aux_terms(const Tensor& cross_entropy, const std::vector<AuxLoss>& aux);

// A sum of one-element tensors (each times count) over forwards. On the CPU each is read as it
// comes and added in double; on a device they add up there and value() reads the sum back once.
class ScalarSum {
 public:
  void add(const Tensor& scalar, double count = 1);
  double value() const;

 private:
  double host_ = 0;
  Tensor device_;
};

// An aux term's value over a step or an evaluation.
struct AuxValue {
  std::string name;
  double weight = 0;
  double value = 0;
};
// sum of weight * value: what the aux terms add to the loss.
double weighted_aux_total(const std::vector<AuxValue>& aux);
// prefix + "aux_<name>" for each term unweighted, and prefix + "aux_loss" for the weighted total;
// nothing when there are no terms. Json: nlohmann::json or nlohmann::ordered_json.
template <typename Json>
void add_aux_fields(Json& line, const std::vector<AuxValue>& aux, const std::string& prefix = "") {
  if (aux.empty()) return;
  for (const AuxValue& a : aux) line[prefix + "aux_" + a.name] = a.value;
  line[prefix + "aux_loss"] = weighted_aux_total(aux);
}

// The aux terms of several forwards summed term by term. The first forward fixes the terms (their
// names are checked); every later one must return the same names in the same order.
class AuxSums {
 public:
  // Adds each term's value (in the loss's type, detached) times count.
  void add(const std::vector<AuxLoss>& aux, double count = 1);
  size_t size() const { return sums_.size(); }
  std::vector<double> values() const;  // the sums, read back
  // The terms with value sums[i] / count (sums: values(), possibly added over ranks since).
  std::vector<AuxValue> means(const std::vector<double>& sums, double count) const;

 private:
  bool started_ = false;
  std::vector<AuxValue> terms_;  // names and weights
  std::vector<ScalarSum> sums_;
};

}  // namespace eat
