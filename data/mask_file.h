#pragma once
// Loss masks: which targets of a token file are scored. A token file DIR/NAME.tok may have a mask
// DIR/NAME.mask beside it; the trainer, its validation and `eat eval` then score only the targets
// whose mask byte is 1 (the others become the loss's ignore_index). Masked data come as examples
// of equal length (record_len ids each, back to back): a sample is one whole example, never a
// window across two, so record_len must be the recipe's seq_len + 1.
//
//   offset  size  field
//   0       8     magic "EATMASK\0"
//   8       4     format version (1)
//   12      4     record_len: ids per example
//   16      8     number of mask bytes (= ids in the token file)
//   24      40    zero
//   64      count one byte per id: 1 scored as a target, 0 not
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/mapped_file.h"
#include "data/token_file.h"

namespace eat::data {

// DIR/NAME.mask for DIR/NAME.tok (any other name: the name + ".mask").
std::string mask_path_for(const std::string& token_path);

// Writes the mask (bytes 0 or 1) atomically.
void write_mask_file(const std::string& path, const std::vector<uint8_t>& scored, int64_t record_len);

// A read-only memory map of a mask file, checked against the token file it belongs to.
class MaskFile {
 public:
  MaskFile(const std::string& path, const TokenFile& tokens);

  const std::string& path() const { return path_; }
  int64_t size() const { return count_; }
  int64_t record_len() const { return record_len_; }
  bool scored(int64_t i) const { return bytes_[i] != 0; }

 private:
  std::string path_;
  MappedFile map_;
  int64_t count_ = 0, record_len_ = 0;
  const uint8_t* bytes_ = nullptr;
};

// The mask beside a token file, or null when there is none.
std::unique_ptr<MaskFile> open_mask_beside(const TokenFile& tokens);

}  // namespace eat::data
