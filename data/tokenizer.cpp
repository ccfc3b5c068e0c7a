#include "data/tokenizer.h"

#include <filesystem>

#include "base/error.h"
#include "data/sentencepiece_tokenizer.h"
#include "data/token_file.h"

namespace eat::data {

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  out.reserve(ids.size());
  for (int32_t id : ids) {
    EAT_CHECK(id >= 0 && id <= 256, "byte tokenizer: id ", id, " is outside [0, 256]");
    if (id < 256) out.push_back(static_cast<char>(id));  // end-of-text decodes to nothing
  }
  return out;
}

std::unique_ptr<Tokenizer> open_tokenizer(const std::string& name, const std::string& dir) {
  if (name == "byte") return std::make_unique<ByteTokenizer>();
  if (name == "sentencepiece") {
    const std::string path = (std::filesystem::path(dir) / kTokenizerModelFile).string();
    EAT_CHECK(std::filesystem::is_regular_file(path), "the sentencepiece tokenizer's model ", path, " is missing");
    return SentencePieceTokenizer::from_file(path);
  }
  fail("unknown tokenizer '", name, "' (known: byte, sentencepiece)");
}

namespace {

std::string directory_of(const TokenFile& file) { return std::filesystem::path(file.path()).parent_path().string(); }

}  // namespace

std::unique_ptr<Tokenizer> token_files_tokenizer(const TokenFile& train, const TokenFile* val) {
  const TokenFileInfo& t = train.info();
  // Byte files may be wider than 257 ids (their ids are checked against the model one by one); a
  // subword vocabulary is its model's.
  if (val)
    EAT_CHECK(val->info().tokenizer == t.tokenizer && (t.tokenizer != "sentencepiece" || val->info().vocab_size == t.vocab_size),
              "token file ", val->path(),
              " was written by tokenizer ", val->info().tokenizer, " (vocabulary ", val->info().vocab_size, "), ",
              train.path(), " by ", t.tokenizer, " (vocabulary ", t.vocab_size, ")");
  if (t.tokenizer != "sentencepiece") return nullptr;
  std::unique_ptr<Tokenizer> tokenizer = open_tokenizer(t.tokenizer, directory_of(train));
  EAT_CHECK(tokenizer->vocab_size() == t.vocab_size, "token file ", train.path(), " has a vocabulary of ", t.vocab_size,
            " but the tokenizer model beside it has ", tokenizer->vocab_size(), " pieces");
  if (val && directory_of(*val) != directory_of(train))
    EAT_CHECK(open_tokenizer(t.tokenizer, directory_of(*val))->model_bytes() == tokenizer->model_bytes(), "token files ",
              train.path(), " and ", val->path(), " stand beside different tokenizer models");
  return tokenizer;
}

}  // namespace eat::data
