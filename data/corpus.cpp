#include "data/corpus.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/token_file.h"
#include "data/tokenizer.h"
#include "base/error.h"

namespace eat::data {

namespace {

// Where text ends up: the cut moves forward to just after the next newline so no line is split.
size_t split_point(const std::string& text, double val_fraction) {
  size_t cut = static_cast<size_t>(static_cast<double>(text.size()) * (1.0 - val_fraction));
  size_t nl = text.find('\n', cut);
  return nl == std::string::npos ? cut : nl + 1;
}

// The tokenizer of choice; a SentencePiece model is trained on train_text.
std::unique_ptr<Tokenizer> choose_tokenizer(const TokenizerChoice& c, std::string_view train_text) {
  const bool trains = c.training.vocab_size > 0, reads = !c.model_file.empty();
  if (c.name == "byte") {
    EAT_CHECK(!trains && !reads, "data: --vocab and --tokenizer-model apply to --tokenizer sentencepiece, not byte");
    return std::make_unique<ByteTokenizer>();
  }
  EAT_CHECK(c.name == "sentencepiece", "data: unknown --tokenizer '", c.name, "' (known: byte, sentencepiece)");
  EAT_CHECK(trains != reads, "data: --tokenizer sentencepiece needs either --vocab N (train a model on the training "
                             "split) or --tokenizer-model FILE (encode with an existing one), not ",
            trains ? "both" : "neither");
  if (reads) return SentencePieceTokenizer::from_file(c.model_file);
  return std::make_unique<SentencePieceTokenizer>(train_sentencepiece(train_text, c.training),
                                                  "the sentencepiece model trained on the training split");
}

}  // namespace

PreparedCorpus tokenize_texts(const std::vector<std::string>& documents, const std::string& out_dir,
                              const TokenizerChoice& tokenizer, double val_fraction) {
  EAT_CHECK(val_fraction > 0 && val_fraction < 1, "data: --val-fraction must be in (0, 1), got ", val_fraction);
  EAT_CHECK(!documents.empty(), "data: no input text");
  // Documents are joined with the end-of-text id, then the stream is split; the split happens in
  // text space so both sides know how many raw bytes they encode (for bits per byte).
  std::vector<int32_t> train, val;
  int64_t train_bytes = 0, val_bytes = 0;
  std::string all;
  std::vector<size_t> doc_ends;
  for (const std::string& d : documents) {
    all += d;
    doc_ends.push_back(all.size());
  }
  size_t cut = split_point(all, val_fraction);
  // Trained on the training split alone: validation text stays unseen, as it is by the model.
  std::unique_ptr<Tokenizer> tok = choose_tokenizer(tokenizer, std::string_view(all).substr(0, cut));
  size_t begin = 0;
  for (size_t doc = 0; doc < doc_ends.size(); ++doc) {
    const size_t end = doc_ends[doc];
    for (auto [lo, hi, ids, bytes] : {std::tuple{begin, std::min(end, cut), &train, &train_bytes},
                                      std::tuple{std::max(begin, cut), end, &val, &val_bytes}}) {
      if (lo >= hi) continue;
      const std::string_view text = std::string_view(all).substr(lo, hi - lo);
      std::vector<int32_t> part = tok->encode(text);
      // Lossless or refused: SentencePiece reads UTF-8 and turns other bytes into U+FFFD.
      if (const std::string back = tok->decode(part); back != text) {
        const size_t at = static_cast<size_t>(std::mismatch(text.begin(), text.end(), back.begin(), back.end()).first -
                                              text.begin());
        fail("data: text ", doc + 1, " is not UTF-8 at byte ", lo - (doc ? doc_ends[doc - 1] : 0) + at, ", which the ",
             tok->name(), " tokenizer cannot give back; use --tokenizer byte for it");
      }
      ids->insert(ids->end(), part.begin(), part.end());
      if (hi == end) ids->push_back(static_cast<int32_t>(tok->end_of_text()));
      *bytes += static_cast<int64_t>(hi - lo);
    }
    begin = end;
  }
  EAT_CHECK(!val.empty(), "data: the validation split is empty; raise --val-fraction");

  std::filesystem::create_directories(out_dir);
  PreparedCorpus out;
  out.train_path = (std::filesystem::path(out_dir) / "train.tok").string();
  out.val_path = (std::filesystem::path(out_dir) / "val.tok").string();
  // The model before the token files that need it.
  if (const std::string model = tok->model_bytes(); !model.empty()) {
    out.tokenizer_model = (std::filesystem::path(out_dir) / kTokenizerModelFile).string();
    std::ofstream file(out.tokenizer_model, std::ios::binary | std::ios::trunc);
    file.write(model.data(), static_cast<std::streamsize>(model.size()));
    EAT_CHECK(file.flush(), "cannot write ", out.tokenizer_model);
  }
  write_token_file(out.train_path, train, tok->vocab_size(), tok->name(), train_bytes);
  write_token_file(out.val_path, val, tok->vocab_size(), tok->name(), val_bytes);
  out.train_tokens = static_cast<int64_t>(train.size());
  out.val_tokens = static_cast<int64_t>(val.size());
  out.raw_bytes = static_cast<int64_t>(all.size());
  out.vocab_size = tok->vocab_size();
  return out;
}

std::string read_kjv_text() {
  const char* cmd = "bible 'Gen1:1-Rev22:21' 2>/dev/null";
  FILE* pipe = ::popen(cmd, "r");
  EAT_CHECK(pipe, "data prepare kjv: cannot run the `bible` program");
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) text.append(buf, n);
  int status = ::pclose(pipe);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  EAT_CHECK(code != 127, "data prepare kjv: the `bible` program is missing; install the Debian package bible-kjv "
                         "(apt-get install bible-kjv, or run scripts/setup.sh)");
  EAT_CHECK(code == 0 && text.size() > 1000000, "data prepare kjv: `bible` failed (exit ", code, ", ", text.size(),
            " bytes of output); is the bible-kjv package complete?");
  return text;
}

std::vector<std::string> read_text_files(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const std::string& p : paths) {
    std::ifstream in(p, std::ios::binary);
    EAT_CHECK(in, "data tokenize: cannot read text file ", p);
    std::ostringstream ss;
    ss << in.rdbuf();
    out.push_back(ss.str());
    EAT_CHECK(!out.back().empty(), "data tokenize: text file ", p, " is empty");
  }
  return out;
}

}  // namespace eat::data
