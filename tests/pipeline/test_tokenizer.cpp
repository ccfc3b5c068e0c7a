// SentencePiece subword tokenizers: lossless round trips through byte fallback, deterministic
// training, and the token files and models `eat data tokenize` writes with them.
#include <doctest/doctest.h>

#include <filesystem>

#include "base/error.h"
#include "data/corpus.h"
#include "data/sentencepiece_tokenizer.h"
#include "data/token_file.h"
#include "data/tokenizer.h"
#include "temp_dir.h"

using namespace eat;
using namespace eat::data;
using eat::test::TempDir;

namespace {

// About 6 KB of English-like lines drawn from 40 words (a fixed LCG): enough distinct substrings
// for a unigram model of 400 pieces, a few dozen distinct characters.
std::string training_text() {
  const char* words[] = {"in",    "the",   "beginning", "god",      "created", "heaven", "and",    "earth",
                         "was",   "without", "form",    "void",     "darkness", "upon",  "face",   "of",
                         "deep",  "spirit", "moved",    "waters",   "said",    "let",    "there",  "be",
                         "light", "saw",   "that",      "it",       "good",    "divided", "from",  "called",
                         "day",   "night", "evening",   "morning",  "were",    "first",  "firmament", "midst"};
  uint64_t state = 12345;
  std::string text;
  while (text.size() < 6000) {
    for (int w = 0; w < 12; ++w) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      text += words[(state >> 33) % 40];
      text += w == 11 ? ".\n" : (w % 5 == 4 ? ", " : " ");
    }
  }
  return text;
}

// Unigram keeps whole-word substrings only (the text has ~360 of them with the specials), BPE merges more.
int64_t vocab_of(const std::string& model_type) { return model_type == "bpe" ? 400 : 340; }

SentencePieceTokenizer trained(const std::string& model_type) {
  return SentencePieceTokenizer(train_sentencepiece(training_text(), {vocab_of(model_type), model_type}), "test model");
}

}  // namespace

TEST_CASE("tokenizer: sentencepiece round-trips text exactly, characters it never saw through byte fallback") {
  for (const char* type : {"bpe", "unigram"}) {
    CAPTURE(type);
    SentencePieceTokenizer tok = trained(type);
    CHECK(tok.vocab_size() == vocab_of(type));
    CHECK(tok.end_of_text() == 1);
    // Spaces in runs, a leading space, tabs, CR, NUL, accents, CJK, an emoji: none is in the training text.
    std::string text = "  And God said,\tLet there be light:\r\n\n  caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x99\x82 ~{}|";
    text.push_back('\0');
    text += "end  ";
    const std::vector<int32_t> ids = tok.encode(text);
    CHECK(tok.decode(ids) == text);
    std::string streamed;
    for (int32_t id : ids) streamed += tok.piece_bytes(id);
    CHECK(streamed == text);
    // The emoji is its four UTF-8 bytes, ids 2 + byte (the byte pieces follow <unk> and </s>).
    const std::vector<int32_t> emoji = tok.encode("\xf0\x9f\x99\x82");
    CHECK(emoji == std::vector<int32_t>{2 + 0xf0, 2 + 0x9f, 2 + 0x99, 2 + 0x82});
    // Learned pieces: the training text takes far fewer ids than bytes.
    CHECK(tok.encode(training_text()).size() * 2 < training_text().size());
    // End of text decodes to nothing, like the byte tokenizer's.
    CHECK(tok.decode({static_cast<int32_t>(tok.end_of_text())}).empty());
    CHECK_THROWS_WITH_AS(tok.decode({-1}), doctest::Contains("test model: id -1 is outside the vocabulary [0, "), Error);
  }
}

TEST_CASE("tokenizer: the same text trains the same model file, byte for byte") {
  TempDir dir("spdet");
  TokenizerChoice choice("sentencepiece");
  choice.training.vocab_size = 400;
  const std::string text = training_text();
  PreparedCorpus a = tokenize_texts({text}, dir / "a", choice, 0.1);
  PreparedCorpus b = tokenize_texts({text}, dir / "b", choice, 0.1);
  REQUIRE(a.tokenizer_model == dir / "a/tokenizer.model");
  CHECK(eat::test::read_text(a.tokenizer_model) == eat::test::read_text(b.tokenizer_model));
  CHECK(eat::test::read_text(a.train_path) == eat::test::read_text(b.train_path));
  CHECK(train_sentencepiece(text, {340, "unigram"}) == train_sentencepiece(text, {340, "unigram"}));
  // Encoding with the written model (--tokenizer-model) gives the same token files.
  TokenizerChoice reuse("sentencepiece");
  reuse.model_file = a.tokenizer_model;
  PreparedCorpus c = tokenize_texts({text}, dir / "c", reuse, 0.1);
  CHECK(eat::test::read_text(c.train_path) == eat::test::read_text(a.train_path));
  CHECK(eat::test::read_text(c.tokenizer_model) == eat::test::read_text(a.tokenizer_model));
}

TEST_CASE("tokenizer: token files name sentencepiece, its vocabulary and the raw bytes; the model stands beside them") {
  TempDir dir("spfiles");
  TokenizerChoice choice("sentencepiece");
  choice.training.vocab_size = 400;
  const std::string text = training_text(), second = "a second document\n";
  PreparedCorpus c = tokenize_texts({text, second}, dir / "out", choice, 0.1);
  TokenFile train(c.train_path), val(c.val_path);
  CHECK(train.info().tokenizer == "sentencepiece");
  CHECK(train.info().vocab_size == 400);
  CHECK(val.info().vocab_size == 400);
  CHECK(train.info().raw_bytes + val.info().raw_bytes == static_cast<int64_t>(text.size() + second.size()));
  // The validation split decodes back to its text (the end-of-text ids between documents dropped).
  std::unique_ptr<Tokenizer> tok = token_files_tokenizer(train, &val);
  REQUIRE(tok);
  std::vector<int32_t> val_ids(static_cast<size_t>(val.size()));
  val.read(0, val.size(), val_ids.data());
  const std::string all = text + second;
  CHECK(tok->decode(val_ids) == all.substr(all.size() - static_cast<size_t>(val.info().raw_bytes)));
  // Bytes need no model: old and byte-tokenized files stay valid as they are.
  PreparedCorpus bytes = tokenize_texts({text}, dir / "bytes", "byte", 0.1);
  TokenFile byte_train(bytes.train_path);
  CHECK(token_files_tokenizer(byte_train, nullptr) == nullptr);
  CHECK(bytes.tokenizer_model.empty());
  // Files of two tokenizers never pair up; a model of another vocabulary beside the files is refused.
  CHECK_THROWS_WITH_AS(token_files_tokenizer(byte_train, &val),
                       doctest::Contains(("was written by tokenizer sentencepiece (vocabulary 400), " + bytes.train_path +
                                          " by byte (vocabulary 257)")
                                             .c_str()),
                       Error);
  eat::test::write_text(c.tokenizer_model, train_sentencepiece(text, {420, "bpe"}));
  CHECK_THROWS_WITH_AS(token_files_tokenizer(train, &val),
                       doctest::Contains("has a vocabulary of 400 but the tokenizer model beside it has 420 pieces"), Error);
  std::filesystem::remove(c.tokenizer_model);
  CHECK_THROWS_WITH_AS(token_files_tokenizer(train, &val),
                       doctest::Contains(("the sentencepiece tokenizer's model " + c.tokenizer_model + " is missing").c_str()), Error);
}

TEST_CASE("tokenizer: bad sentencepiece options and models are refused, naming the value") {
  TempDir dir("spbad");
  TokenizerChoice neither("sentencepiece");
  CHECK_THROWS_WITH_AS(tokenize_texts({training_text()}, dir / "o", neither, 0.1),
                       doctest::Contains("needs either --vocab N (train a model on the training split) or --tokenizer-model "
                                         "FILE (encode with an existing one), not neither"),
                       Error);
  TokenizerChoice byte_vocab("byte");
  byte_vocab.training.vocab_size = 400;
  CHECK_THROWS_WITH_AS(tokenize_texts({training_text()}, dir / "o", byte_vocab, 0.1),
                       doctest::Contains("--vocab and --tokenizer-model apply to --tokenizer sentencepiece"), Error);
  CHECK_THROWS_WITH_AS(train_sentencepiece(training_text(), {258, "bpe"}),
                       doctest::Contains("--vocab 258 is too small"), Error);
  CHECK_THROWS_WITH_AS(train_sentencepiece(training_text(), {400, "word"}),
                       doctest::Contains("--model-type must be bpe or unigram, got 'word'"), Error);
  // Bytes that are no UTF-8 would come back as U+FFFD: refused, naming the text and the byte.
  TokenizerChoice subwords("sentencepiece");
  subwords.training.vocab_size = 400;
  CHECK_THROWS_WITH_AS(tokenize_texts({training_text(), "ok\nnot \xff UTF-8\n"}, dir / "o", subwords, 0.1),
                       doctest::Contains("text 2 is not UTF-8 at byte 7, which the sentencepiece tokenizer cannot give "
                                         "back; use --tokenizer byte for it"),
                       Error);
  eat::test::write_text(dir / "junk.model", "not a model");
  CHECK_THROWS_WITH_AS(SentencePieceTokenizer::from_file(dir / "junk.model"),
                       doctest::Contains("junk.model: not a SentencePiece model"), Error);
}
