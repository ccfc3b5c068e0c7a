// eat data prepare kjv --out DIR | eat data prepare mqar --out DIR | eat data tokenize --text FILE... --out DIR
// (kjv and tokenize: [--tokenizer byte|sentencepiece --vocab N --model-type bpe|unigram | --tokenizer-model FILE])
#include <cstdio>

#include "data/corpus.h"
#include "data/mqar.h"
#include "app/commands.h"

namespace eat::cli {

namespace {

void report(const data::PreparedCorpus& c) {
  std::printf("wrote %s (%lld tokens) and %s (%lld tokens) from %lld bytes of text\n", c.train_path.c_str(),
              static_cast<long long>(c.train_tokens), c.val_path.c_str(), static_cast<long long>(c.val_tokens),
              static_cast<long long>(c.raw_bytes));
  if (!c.tokenizer_model.empty())
    std::printf("wrote %s (sentencepiece, vocabulary %lld)\n", c.tokenizer_model.c_str(), static_cast<long long>(c.vocab_size));
}

// --tokenizer and the SentencePiece options, for the commands that turn text into token files.
std::shared_ptr<data::TokenizerChoice> add_tokenizer_options(CLI::App& cmd) {
  auto c = std::make_shared<data::TokenizerChoice>();
  cmd.add_option("--tokenizer", c->name, "byte, or sentencepiece (subwords; with --vocab or --tokenizer-model)")
      ->check(CLI::IsMember({"byte", "sentencepiece"}))
      ->capture_default_str();
  cmd.add_option("--vocab", c->training.vocab_size,
                 "sentencepiece: train a model of this many pieces (bytes and specials included, above 258) on the training split")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--model-type", c->training.model_type, "sentencepiece: bpe or unigram")
      ->check(CLI::IsMember({"bpe", "unigram"}))
      ->capture_default_str();
  cmd.add_option("--tokenizer-model", c->model_file, "sentencepiece: encode with this model instead of training one")
      ->check(CLI::ExistingFile);
  return c;
}

}  // namespace

void add_data_command(CLI::App& app) {
  auto* data = app.add_subcommand("data", "Prepare corpora and tokenize text into token files");
  data->require_subcommand(1);

  auto* prepare = data->add_subcommand("prepare", "Prepare a known corpus");
  prepare->require_subcommand(1);
  auto* kjv = prepare->add_subcommand("kjv", "The King James Bible (Debian package bible-kjv), byte tokens by default, last 5% as validation");
  auto kjv_out = std::make_shared<std::string>("data/kjv");
  auto kjv_val = std::make_shared<double>(0.05);
  kjv->add_option("--out", *kjv_out, "Output directory")->capture_default_str();
  kjv->add_option("--val-fraction", *kjv_val, "Fraction of the text held out for validation")->capture_default_str();
  auto kjv_tokenizer = add_tokenizer_options(*kjv);
  kjv->callback([=] { report(data::tokenize_texts({data::read_kjv_text()}, *kjv_out, *kjv_tokenizer, *kjv_val)); });

  auto* mqar = prepare->add_subcommand("mqar", "Multi-query associative recall examples (Zoology's MQAR) with a loss mask");
  auto mq = std::make_shared<data::MqarOptions>();
  auto mq_out = std::make_shared<std::string>();
  mqar->add_option("--out", *mq_out, "Output directory")->required();
  mqar->add_option("--vocab", mq->vocab, "Vocabulary size: keys below vocab/2, values above")->capture_default_str();
  mqar->add_option("--seq-len", mq->seq_len, "Tokens per example input (even, 64..512); examples are seq-len + 1 ids")
      ->capture_default_str();
  mqar->add_option("--kv-pairs", mq->kv_pairs, "Key-value pairs per example (default seq-len / 16)");
  mqar->add_option("--train-examples", mq->train_examples, "Training examples")->capture_default_str();
  mqar->add_option("--val-examples", mq->val_examples, "Validation examples (seed + 10)")->capture_default_str();
  mqar->add_option("--seed", mq->seed, "Seed: the same seed writes the same files")->capture_default_str();
  mqar->callback([=] {
    data::PreparedMqar p = data::prepare_mqar(*mq, *mq_out);
    std::printf("wrote %s and %s with their masks (.mask): %lld and %lld examples of %lld + 1 ids, %lld key-value pairs, "
                "vocab %lld\n",
                p.train_path.c_str(), p.val_path.c_str(), static_cast<long long>(mq->train_examples),
                static_cast<long long>(mq->val_examples), static_cast<long long>(mq->seq_len),
                static_cast<long long>(p.kv_pairs), static_cast<long long>(mq->vocab));
  });

  auto* tok = data->add_subcommand("tokenize", "Tokenize text files (one document each) into train/val token files");
  auto texts = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  auto val = std::make_shared<double>(0.05);
  tok->add_option("--text", *texts, "Text files")->required()->take_all();
  tok->add_option("--out", *out, "Output directory")->required();
  auto tokenizer = add_tokenizer_options(*tok);
  tok->add_option("--val-fraction", *val, "Fraction of the text held out for validation")->capture_default_str();
  tok->callback([=] { report(data::tokenize_texts(data::read_text_files(*texts), *out, *tokenizer, *val)); });
}

}  // namespace eat::cli
