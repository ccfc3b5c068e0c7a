#pragma once
// Tokenizers turn text into ids and back. Byte-level today; the interface is what a BPE
// tokenizer will implement too. Token files record the tokenizer's name so a model is never fed
// ids from a different vocabulary.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace eat::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string name() const = 0;    // stored in token-file headers, e.g. "byte"
  virtual int64_t vocab_size() const = 0;  // ids are in [0, vocab_size)
  virtual int64_t end_of_text() const = 0; // separates documents
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
};

// One id per UTF-8 byte (0..255) plus end-of-text = 256: vocab 257. Lossless on any input.
class ByteTokenizer : public Tokenizer {
 public:
  std::string name() const override { return "byte"; }
  int64_t vocab_size() const override { return 257; }
  int64_t end_of_text() const override { return 256; }
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
};

// The tokenizer with this name; the error lists the known names.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& name);

}  // namespace eat::data
