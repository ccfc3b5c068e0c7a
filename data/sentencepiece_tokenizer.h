#pragma once
// Subword tokenizers through SentencePiece (BPE or unigram), the library the field uses. Only
// data/sentencepiece_tokenizer.cpp sees its headers.
//
// Every model eat trains or reads is lossless on UTF-8 text: identity normalisation (no NFKC, no
// whitespace folding, no dummy prefix space) and byte fallback, so a character the training text
// never held still encodes, as its UTF-8 bytes. Ids: 0 <unk> (never produced, byte fallback covers
// everything), 1 </s> (end of text, separates documents), 2..257 the bytes <0x00>..<0xFF>, then
// the learned pieces.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer.h"

namespace eat::data {

struct SentencePieceTraining {
  int64_t vocab_size = 0;          // pieces, the byte and special ones included
  std::string model_type = "bpe";  // bpe | unigram
};

// Trains a model on text (its lines are the training sentences) and returns the serialized model:
// the same text and options give the same bytes (one thread, a fixed seed, no sampling of lines).
std::string train_sentencepiece(std::string_view text, const SentencePieceTraining& options);

class SentencePieceTokenizer : public Tokenizer {
 public:
  // model: a serialized SentencePiece model; origin names it in errors (a file path).
  SentencePieceTokenizer(std::string model, const std::string& origin);
  ~SentencePieceTokenizer() override;
  static std::unique_ptr<SentencePieceTokenizer> from_file(const std::string& path);

  std::string name() const override { return "sentencepiece"; }
  int64_t vocab_size() const override;
  int64_t end_of_text() const override;
  std::vector<int32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  std::string piece_bytes(int32_t id) const override;
  std::string model_bytes() const override { return model_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string model_, origin_;
};

}  // namespace eat::data
