#pragma once
// The training sample stream. A sample is seq_len + 1 consecutive ids (inputs and the targets
// shifted by one). Each epoch cuts the token file into windows of seq_len at a random shift and
// visits them in a random order; both come from (seed, epoch) only. Sample g of the global stream
// is therefore a pure function of (seed, g): the trainer asks for global sample indices, each
// data-parallel rank takes its own slice of every step, and a checkpoint stores only how many
// global samples were consumed -- so a run resumes exactly, even on a different number of ranks.
// With a loss mask (data/mask_file.h) the file holds whole examples of seq_len + 1 ids: samples
// are those examples, shuffled the same way, never a window across two.
#include <cstdint>
#include <vector>

#include "data/mask_file.h"
#include "data/token_file.h"

namespace eat::data {

class SampleStream {
 public:
  // mask: null, or the file's mask, whose examples must be seq_len + 1 ids.
  SampleStream(const TokenFile& file, int64_t seq_len, uint64_t seed, const MaskFile* mask = nullptr);

  int64_t seq_len() const { return seq_len_; }
  int64_t samples_per_epoch() const { return windows_; }
  // Where sample g starts in the token file.
  int64_t sample_start(int64_t g) const;
  // Writes samples [first, first + n) as n rows of seq_len + 1 ids into out.
  void read(int64_t first, int64_t n, int32_t* out) const;

  const MaskFile* mask() const { return mask_; }
  // Writes the mask bytes of samples [first, first + n) like read() writes their ids (needs a mask).
  void read_mask(int64_t first, int64_t n, uint8_t* out) const;
  // Scored targets (ids 1..seq_len of each sample) in samples [first, first + n); n * seq_len
  // without a mask.
  int64_t scored_targets(int64_t first, int64_t n) const;

 private:
  const std::vector<int64_t>& order(int64_t epoch) const;  // a permutation of the windows

  const TokenFile& file_;
  const MaskFile* mask_;
  int64_t seq_len_;
  uint64_t seed_;
  int64_t windows_;
  mutable int64_t cached_epoch_ = -1;
  mutable int64_t cached_shift_ = 0;
  mutable std::vector<int64_t> cached_order_;
};

}  // namespace eat::data
