#pragma once
// The base of every token mixer that exchanges data along the time axis under sequence
// parallelism (softmax attention, linear attention, ...). It owns what each such layer needs for
// that: the SP group and the label its traffic is booked to. LanguageModel::set_sequence_parallel
// finds every SequenceMixer among a model's modules and sets both, so a family only derives its
// mixer from this class.
#include <string>

#include "framework/comm/communicator.h"
#include "framework/nn/module.h"

namespace eat {

class SequenceMixer : public Module {
 public:
  // group nullptr (or of size 1): whole sequences. label: this module's path, e.g. "layers.2.attn".
  // chain_slices: parallel.chain_slices, for mixers whose state passes through the ranks in series.
  void set_sequence_parallel(Communicator* group, std::string label, int64_t chain_slices = 0) {
    sp_group_ = group;
    comm_label_ = std::move(label);
    chain_slices_ = chain_slices;
  }
  // Why this mixer, as configured, cannot split a sequence ("" when it can), e.g. a kernel choice
  // without a sequence-parallel form. Asked before a group of more than one rank is set.
  virtual std::string sequence_parallel_refusal() const { return ""; }

  // True when forward() sees only this rank's share of each sequence.
  bool sequence_split() const { return sp_group_ && sp_group_->size() > 1; }
  Communicator& sp_group() const { return *sp_group_; }
  const std::string& comm_label() const { return comm_label_; }
  // A mixer whose state runs through the ranks one after another (a chain) runs a micro-batch's
  // sequences in this many slices, so that rank r + 1 works on one slice while rank r works on the
  // next (0: one slice per sequence).
  int64_t chain_slices() const { return chain_slices_; }

 private:
  Communicator* sp_group_ = nullptr;
  std::string comm_label_;
  int64_t chain_slices_ = 0;
};

}  // namespace eat
