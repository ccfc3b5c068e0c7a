#include "data/loader.h"

#include <numeric>

#include "base/error.h"
#include "base/random.h"

namespace eat::data {

SampleStream::SampleStream(const TokenFile& file, int64_t seq_len, uint64_t seed, const MaskFile* mask)
    : file_(file), mask_(mask), seq_len_(seq_len), seed_(seed) {
  EAT_CHECK(seq_len > 0, "data: seq_len must be positive, got ", seq_len);
  if (mask) {
    EAT_CHECK(mask->record_len() == seq_len + 1, "data: ", mask->path(), " holds examples of ", mask->record_len(),
              " ids, which need data.seq_len = ", mask->record_len() - 1, "; the recipe has seq_len ", seq_len);
    windows_ = file.size() / mask->record_len();
    EAT_CHECK(windows_ >= 1, "data: ", file.path(), " holds no example");
    return;
  }
  // Any shift in [0, seq_len) leaves room for this many whole samples (each needs seq_len + 1 ids).
  windows_ = (file.size() - seq_len) / seq_len;
  EAT_CHECK(windows_ >= 1, "data: ", file.path(), " holds ", file.size(), " tokens, too few for one training sample of ",
            seq_len, " + 1 tokens at every shift (need at least ", 2 * seq_len, ")");
}

const std::vector<int64_t>& SampleStream::order(int64_t epoch) const {
  if (epoch != cached_epoch_) {
    // One generator per epoch: epoch e's order never depends on how far earlier epochs were read.
    Generator gen(seed_ * 0x100000001B3ull + static_cast<uint64_t>(epoch) + 1);
    cached_shift_ = static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(seq_len_));
    if (mask_) cached_shift_ = 0;  // examples start at multiples of seq_len + 1
    cached_order_.resize(static_cast<size_t>(windows_));
    std::iota(cached_order_.begin(), cached_order_.end(), 0);
    for (int64_t i = windows_ - 1; i > 0; --i) {  // Fisher-Yates
      int64_t j = static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(i + 1));
      std::swap(cached_order_[i], cached_order_[j]);
    }
    cached_epoch_ = epoch;
  }
  return cached_order_;
}

int64_t SampleStream::sample_start(int64_t g) const {
  EAT_CHECK(g >= 0, "data: negative sample index ", g);
  const std::vector<int64_t>& perm = order(g / windows_);
  const int64_t stride = mask_ ? seq_len_ + 1 : seq_len_;
  return cached_shift_ + perm[static_cast<size_t>(g % windows_)] * stride;
}

void SampleStream::read(int64_t first, int64_t n, int32_t* out) const {
  for (int64_t i = 0; i < n; ++i) file_.read(sample_start(first + i), seq_len_ + 1, out + i * (seq_len_ + 1));
}

void SampleStream::read_mask(int64_t first, int64_t n, uint8_t* out) const {
  EAT_CHECK(mask_, "data: ", file_.path(), " has no mask");
  for (int64_t i = 0; i < n; ++i) {
    const int64_t start = sample_start(first + i);
    for (int64_t j = 0; j <= seq_len_; ++j) out[i * (seq_len_ + 1) + j] = mask_->scored(start + j) ? 1 : 0;
  }
}

int64_t SampleStream::scored_targets(int64_t first, int64_t n) const {
  if (!mask_) return n * seq_len_;
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t start = sample_start(first + i);
    for (int64_t j = 1; j <= seq_len_; ++j) count += mask_->scored(start + j);
  }
  return count;
}

}  // namespace eat::data
