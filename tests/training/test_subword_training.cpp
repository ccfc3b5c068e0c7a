// Training and evaluating on SentencePiece token files: the vocabulary check, the tokenizer model
// every checkpoint carries, and bits per byte over the raw bytes the header records.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "base/error.h"
#include "data/corpus.h"
#include "data/token_file.h"
#include "framework/train/checkpoint.h"
#include "framework/train/evaluate.h"
#include "framework/train/trainer.h"
#include "temp_dir.h"
#include "tiny_run.h"

using namespace eat;
using eat::test::TempDir;
using eat::test::quiet;
using eat::test::read_text;

namespace {

constexpr int64_t kVocab = 300;

data::TokenizerChoice subwords(int64_t vocab = kVocab) {
  data::TokenizerChoice c("sentencepiece");
  c.training.vocab_size = vocab;
  return c;
}

// Every token equally likely: the loss is ln V per token whatever the ids.
class UniformModel : public LanguageModel {
 public:
  explicit UniformModel(int64_t vocab) : vocab_(vocab) {}
  ModelOutput forward(const Tensor& ids) override { return {Tensor::zeros({ids.size(0), ids.size(1), vocab_}, DType::f64)}; }
  double train_flops_per_token(int64_t) const override { return 0; }

 private:
  int64_t vocab_;
};

}  // namespace

TEST_CASE("subword training: a recipe whose vocab_size does not cover the token files is refused, naming both") {
  TempDir dir("spvocab");
  data::tokenize_texts({test::synthetic_text(600)}, dir / "data", subwords(), 0.1);
  Recipe r = parse_recipe(test::recipe_text(dir.str()), "test.toml", {"model.vocab_size=257"});
  CHECK_THROWS_WITH_AS(train(r, quiet()),
                       doctest::Contains(("test.toml: model.vocab_size = 257 is smaller than the vocabulary of " +
                                          dir / "data/train.tok" + " (300, tokenizer sentencepiece)")
                                             .c_str()),
                       Error);
}

TEST_CASE("subword training: checkpoints carry the tokenizer model, checked by its hash; bytes need none") {
  TempDir dir("spckpt");
  data::tokenize_texts({test::synthetic_text(600)}, dir / "data", subwords(), 0.1);
  const std::vector<std::string> sets = {"model.vocab_size=300", "train.steps=4"};
  TrainResult run = train(parse_recipe(test::recipe_text(dir.str()), "test.toml", sets), quiet());
  const std::string ckpt = run.last_checkpoint;
  const std::string model_file = ckpt + "/tokenizer.model";
  REQUIRE(std::filesystem::exists(model_file));
  CHECK(read_text(model_file) == read_text(dir / "data/tokenizer.model"));
  const TrainState state = checkpoint_state(ckpt);
  CHECK(state.tokenizer == "sentencepiece");
  std::unique_ptr<data::Tokenizer> tok = checkpoint_tokenizer(ckpt, state);
  CHECK(tok->vocab_size() == kVocab);
  CHECK(tok->decode(tok->encode("the king went up")) == "the king went up");

  // Re-tokenized data (another model) do not resume these weights.
  data::tokenize_texts({test::synthetic_text(600)}, dir / "data", subwords(320), 0.1);
  CHECK_THROWS_WITH_AS(train(parse_recipe(test::recipe_text(dir.str()), "test.toml", {"model.vocab_size=320", "train.steps=8"}),
                             quiet("auto")),
                       doctest::Contains("trained on data of another tokenizer"), Error);
  // A checkpoint's tokenizer.model replaced afterwards is refused.
  std::filesystem::copy_file(dir / "data/tokenizer.model", model_file, std::filesystem::copy_options::overwrite_existing);
  CHECK_THROWS_WITH_AS(checkpoint_tokenizer(ckpt, state),
                       doctest::Contains("tokenizer.model: not the tokenizer model the checkpoint was trained with"), Error);
  std::filesystem::remove(model_file);
  CHECK_THROWS_WITH_AS(checkpoint_tokenizer(ckpt, state), doctest::Contains("tokenizer.model is missing"), Error);

  // A byte run records no tokenizer and its checkpoints hold no model.
  TempDir bytes("spbytes");
  data::tokenize_texts({test::synthetic_text(600)}, bytes / "data", "byte", 0.1);
  TrainResult byte_run = train(parse_recipe(test::recipe_text(bytes.str()), "test.toml", {"train.steps=4"}), quiet());
  CHECK_FALSE(std::filesystem::exists(byte_run.last_checkpoint + "/tokenizer.model"));
  const TrainState byte_state = checkpoint_state(byte_run.last_checkpoint);
  CHECK(byte_state.tokenizer.empty());
  CHECK(checkpoint_tokenizer(byte_run.last_checkpoint, byte_state)->name() == "byte");
}

TEST_CASE("subword training: bits per byte divide by the raw bytes, the same for byte and subword files of one text") {
  // A uniform model scores every token ln V nats, so eval's bits per byte have a closed form:
  // log2(V) x ids / raw bytes. Both files hold the same text, so the same raw bytes; the subword
  // file's fewer, less likely ids must come out through those bytes, not per token.
  TempDir dir("spbpb");
  const std::string text = test::synthetic_text(600);
  data::tokenize_texts({text}, dir / "bytes", "byte", 0.1);
  data::tokenize_texts({text}, dir / "subwords", subwords(), 0.1);
  data::TokenFile byte_val(dir / "bytes/val.tok"), sub_val(dir / "subwords/val.tok");
  REQUIRE(byte_val.info().raw_bytes == sub_val.info().raw_bytes);
  CHECK(sub_val.size() < byte_val.size());
  for (auto [file, vocab] : {std::pair{&byte_val, int64_t{257}}, std::pair{&sub_val, kVocab}}) {
    CAPTURE(vocab);
    UniformModel model(vocab);
    EvalResult r = evaluate(model, *file, {32, 32, 0, 4});
    const double expected = std::log2(static_cast<double>(vocab)) * static_cast<double>(file->size()) /
                            static_cast<double>(file->info().raw_bytes);
    CHECK(r.loss == doctest::Approx(std::log(static_cast<double>(vocab))).epsilon(1e-12));
    CHECK(r.bpb == doctest::Approx(expected).epsilon(1e-12));
  }
}
