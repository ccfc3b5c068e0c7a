#pragma once
// Turning raw text into train/val token files: the King James Bible (the default corpus, from
// Debian's bible-kjv package) and users' own text files.
#include <cstdint>
#include <string>
#include <vector>

#include "data/sentencepiece_tokenizer.h"

namespace eat::data {

// The tokenizer text is turned into ids with.
struct TokenizerChoice {
  TokenizerChoice(const char* tokenizer = "byte") : name(tokenizer) {}  // NOLINT: a name alone reads as one
  std::string name;                // byte | sentencepiece
  SentencePieceTraining training;  // sentencepiece: trains a model of training.vocab_size on the training split...
  std::string model_file;          // ...or encodes with this model instead
};

struct PreparedCorpus {
  std::string train_path, val_path;
  int64_t train_tokens = 0, val_tokens = 0;
  int64_t raw_bytes = 0;
  int64_t vocab_size = 0;
  std::string tokenizer_model;  // DIR/tokenizer.model, "" for bytes
};

// Splits text into train (first 1 - val_fraction of the bytes) and val (the rest), cutting at
// a line boundary, tokenizes both and writes DIR/train.tok and DIR/val.tok. Documents (files)
// are separated by the end-of-text id. A SentencePiece model is trained on the training split
// alone (or read from tokenizer.model_file) and written to DIR/tokenizer.model.
PreparedCorpus tokenize_texts(const std::vector<std::string>& documents, const std::string& out_dir,
                              const TokenizerChoice& tokenizer, double val_fraction);

// The full KJV text as printed by `bible "Gen1:1-Rev22:21"`, about 4.3 MB.
std::string read_kjv_text();

// Reads text files; a missing or unreadable one is an error naming it.
std::vector<std::string> read_text_files(const std::vector<std::string>& paths);

}  // namespace eat::data
