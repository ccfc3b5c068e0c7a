#pragma once
// Token files: a 64-byte self-describing header, then the ids as raw little-endian integers.
//
//   offset  size  field
//   0       8     magic "EATTOKS\0"
//   8       4     format version (1)
//   12      4     bytes per id (2 or 4)
//   16      8     number of ids
//   24      8     bytes of raw text the ids encode (for bits-per-byte)
//   32      4     vocabulary size
//   36      28    tokenizer name, NUL-padded ("byte")
//
// Readers memory-map the file and refuse anything truncated, foreign or inconsistent, naming the
// file and what is wrong.
#include <cstdint>
#include <string>
#include <vector>

#include "data/mapped_file.h"

namespace eat::data {

struct TokenFileInfo {
  int64_t count = 0;
  int64_t raw_bytes = 0;
  int64_t vocab_size = 0;
  int bytes_per_id = 2;
  std::string tokenizer;
};

// Writes ids (each in [0, vocab_size)) to path atomically (temp file, then rename). Two bytes per
// id when the vocabulary fits, else four.
void write_token_file(const std::string& path, const std::vector<int32_t>& ids, int64_t vocab_size,
                      const std::string& tokenizer, int64_t raw_bytes);

// A read-only memory map of a token file.
class TokenFile {
 public:
  explicit TokenFile(const std::string& path);

  const std::string& path() const { return path_; }
  const TokenFileInfo& info() const { return info_; }
  int64_t size() const { return info_.count; }
  int32_t operator[](int64_t i) const {
    return info_.bytes_per_id == 2 ? static_cast<int32_t>(reinterpret_cast<const uint16_t*>(ids_)[i])
                                   : reinterpret_cast<const int32_t*>(ids_)[i];
  }
  // Every id in [0, vocab_size), else an error naming the file, the first bad id, its position
  // and vocab_key (where the vocabulary comes from, e.g. "model.vocab_size = 257"). A linear scan:
  // training checks its files before the first step, so a bad id never surfaces mid-run.
  void check_ids(int64_t vocab_size, const std::string& vocab_key) const;
  // Copies ids [begin, begin + n) into out.
  void read(int64_t begin, int64_t n, int32_t* out) const;

 private:
  std::string path_;
  MappedFile map_;
  TokenFileInfo info_;
  const unsigned char* ids_ = nullptr;
};

}  // namespace eat::data
