#pragma once
// Tokenizers turn text into ids and back: bytes, or SentencePiece subwords
// (data/sentencepiece_tokenizer.h). Token files record the tokenizer's name and vocabulary so a
// model is never fed ids from a different vocabulary; a subword tokenizer's model sits beside
// them, and in every checkpoint trained on them, as tokenizer.model.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace eat::data {

class TokenFile;

inline constexpr const char* kTokenizerModelFile = "tokenizer.model";

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string name() const = 0;    // stored in token-file headers, e.g. "byte"
  virtual int64_t vocab_size() const = 0;  // ids are in [0, vocab_size)
  virtual int64_t end_of_text() const = 0; // separates documents
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // The bytes one id stands for, to stream text as it is sampled: over a sequence of ids they join
  // to decode()'s text (when that is valid UTF-8), a character of several bytes whole once its
  // last byte is out.
  virtual std::string piece_bytes(int32_t id) const { return decode({id}); }
  // The serialized model to keep beside token files and in checkpoints; "" when the tokenizer
  // needs none (bytes).
  virtual std::string model_bytes() const { return ""; }
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

// The tokenizer with this name: "byte", or "sentencepiece" read from dir/tokenizer.model (dir:
// where the token files or the checkpoint are). The error lists the known names.
std::unique_ptr<Tokenizer> open_tokenizer(const std::string& name, const std::string& dir);

// The subword tokenizer token files were written with: the tokenizer.model beside train, whose
// vocabulary must be the header's; null for bytes and other ids that need no model. val (null
// when none) must name the same tokenizer and vocabulary, beside the same model.
std::unique_ptr<Tokenizer> token_files_tokenizer(const TokenFile& train, const TokenFile* val);

}  // namespace eat::data
