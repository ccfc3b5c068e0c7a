#include "data/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <fstream>
#include <sstream>
#include <unordered_map>

#include "base/error.h"

namespace eat::data {

namespace {

constexpr int64_t kSpecialPieces = 2 + 256;  // <unk>, </s> and the 256 byte pieces
constexpr unsigned kSeed = 20240101;         // any fixed value: training samples with it

// The training sentences: the text's non-empty lines (SentencePiece trains on sentences; a newline
// is then encoded through its byte piece).
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(std::string_view text) : text_(text) { Next(); }
  bool done() const override { return done_; }
  void Next() override {
    while (pos_ < text_.size()) {
      size_t end = text_.find('\n', pos_);
      if (end == std::string_view::npos) end = text_.size();
      line_.assign(text_.substr(pos_, end - pos_));
      pos_ = end + 1;
      if (!line_.empty()) return;
    }
    done_ = true;
  }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  std::string line_;
  bool done_ = false;
};

}  // namespace

std::string train_sentencepiece(std::string_view text, const SentencePieceTraining& o) {
  EAT_CHECK(o.model_type == "bpe" || o.model_type == "unigram", "sentencepiece: --model-type must be bpe or unigram, got '",
            o.model_type, "'");
  EAT_CHECK(o.vocab_size > kSpecialPieces, "sentencepiece: --vocab ", o.vocab_size, " is too small: ", kSpecialPieces,
            " ids are the byte pieces, <unk> and </s>, so it must exceed ", kSpecialPieces);
  sentencepiece::SetRandomGeneratorSeed(kSeed);
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", o.model_type},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"model_prefix", ""},  // the model comes back in memory, not as a file
      {"byte_fallback", "true"},
      {"character_coverage", "1.0"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      {"split_digits", "false"},
      {"unk_id", "0"},
      {"eos_id", "1"},
      {"bos_id", "-1"},
      {"pad_id", "-1"},
      {"num_threads", "1"},           // threads would make the result depend on scheduling
      {"input_sentence_size", "0"},   // every line, no random sample
      {"shuffle_input_sentence", "false"},
      {"max_sentence_length", "65536"},
      {"minloglevel", "2"},
  };
  LineIterator lines(text);
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, &model);
  EAT_CHECK(status.ok(), "sentencepiece: training a ", o.model_type, " model of --vocab ", o.vocab_size,
            " failed: ", status.ToString());
  return model;
}

struct SentencePieceTokenizer::Impl {
  sentencepiece::SentencePieceProcessor sp;
};

SentencePieceTokenizer::SentencePieceTokenizer(std::string model, const std::string& origin)
    : impl_(std::make_unique<Impl>()), model_(std::move(model)), origin_(origin) {
  const auto status = impl_->sp.LoadFromSerializedProto(model_);
  EAT_CHECK(status.ok(), origin_, ": not a SentencePiece model (", status.ToString(), ")");
  EAT_CHECK(impl_->sp.eos_id() >= 0, origin_, ": the SentencePiece model has no end-of-text piece </s>");
  // Without byte pieces a character outside the vocabulary would become <unk> and be lost.
  EAT_CHECK(impl_->sp.IsByte(impl_->sp.PieceToId("<0xFF>")), origin_, ": the SentencePiece model was trained without byte fallback, so it cannot encode every text");
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EAT_CHECK(in, "cannot read tokenizer model ", path);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return std::make_unique<SentencePieceTokenizer>(bytes.str(), path);
}

int64_t SentencePieceTokenizer::vocab_size() const { return impl_->sp.GetPieceSize(); }
int64_t SentencePieceTokenizer::end_of_text() const { return impl_->sp.eos_id(); }

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  const auto status = impl_->sp.Encode(text, &ids);
  EAT_CHECK(status.ok(), origin_, ": encoding failed (", status.ToString(), ")");
  return {ids.begin(), ids.end()};
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids) const {
  for (int32_t id : ids)
    EAT_CHECK(id >= 0 && id < vocab_size(), origin_, ": id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
  std::string text;
  const auto status = impl_->sp.Decode(std::vector<int>(ids.begin(), ids.end()), &text);
  EAT_CHECK(status.ok(), origin_, ": decoding failed (", status.ToString(), ")");
  return text;
}

std::string SentencePieceTokenizer::piece_bytes(int32_t id) const {
  // A byte piece alone is no UTF-8 text (decode() would give U+FFFD): its byte, "<0xNN>".
  if (id >= 0 && id < vocab_size() && impl_->sp.IsByte(id))
    return std::string(1, static_cast<char>(std::stoi(impl_->sp.IdToPiece(id).substr(3, 2), nullptr, 16)));
  return decode({id});
}

}  // namespace eat::data
