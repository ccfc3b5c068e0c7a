#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>

#include <filesystem>
#include <fstream>
#include <set>

#include "data/corpus.h"
#include "data/loader.h"
#include "data/token_file.h"
#include "data/tokenizer.h"
#include "base/error.h"
#include "temp_dir.h"

using namespace eat;
using namespace eat::data;
using eat::test::TempDir;

TEST_CASE("data: byte tokenizer round-trips any bytes") {
  ByteTokenizer tok;
  std::string text = "In the beginning\n\xff\x00\x80 caf\xc3\xa9";
  text.push_back('\0');
  auto ids = tok.encode(text);
  CHECK(ids.size() == text.size());
  CHECK(ids[text.size() - 1] == 0);
  CHECK(tok.decode(ids) == text);
  ids.push_back(static_cast<int32_t>(tok.end_of_text()));
  CHECK(tok.decode(ids) == text);  // end-of-text decodes to nothing
  CHECK(tok.vocab_size() == 257);
  CHECK_THROWS_WITH_AS(tok.decode({300}), doctest::Contains("id 300 is outside [0, 256]"), Error);
  CHECK_THROWS_WITH_AS(open_tokenizer("bpe50k", "."), doctest::Contains("unknown tokenizer 'bpe50k' (known: byte, sentencepiece)"), Error);
}

TEST_CASE("data: token files round-trip, 2- and 4-byte ids") {
  TempDir dir("tokfile");
  for (int64_t vocab : {257, 70000}) {
    std::vector<int32_t> ids;
    for (int i = 0; i < 1000; ++i) ids.push_back(static_cast<int32_t>((i * 7919) % vocab));
    std::string path = dir / ("vocab" + std::to_string(vocab));
    write_token_file(path, ids, vocab, "byte", 1234);
    TokenFile f(path);
    CHECK(f.size() == 1000);
    CHECK(f.info().vocab_size == vocab);
    CHECK(f.info().raw_bytes == 1234);
    CHECK(f.info().tokenizer == "byte");
    CHECK(f.info().bytes_per_id == (vocab <= 65536 ? 2 : 4));
    CHECK(std::filesystem::file_size(path) == 64 + 1000 * static_cast<size_t>(f.info().bytes_per_id));
    bool same = true;
    for (int i = 0; i < 1000; ++i) same = same && f[i] == ids[static_cast<size_t>(i)];
    CHECK(same);
    std::vector<int32_t> part(10);
    f.read(990, 10, part.data());
    CHECK(part[9] == ids[999]);
    CHECK_THROWS_WITH_AS(f.read(995, 10, part.data()), doctest::Contains("is outside its 1000 ids"), Error);
  }
  CHECK_THROWS_WITH_AS(write_token_file(dir / "bad.tok", {5, 300}, 257, "byte", 2),
                       doctest::Contains("id 300 at 1 is outside the vocabulary [0, 257)"), Error);
}

TEST_CASE("data: truncated, foreign and missing token files are refused") {
  TempDir dir("tokbad");
  std::vector<int32_t> ids(100, 65);
  write_token_file(dir / "ok.tok", ids, 257, "byte", 100);
  // Truncated: drop the last byte.
  std::filesystem::copy_file(dir / "ok.tok", dir / "cut.tok");
  std::filesystem::resize_file(dir / "cut.tok", 64 + 199);
  CHECK_THROWS_WITH_AS(TokenFile(dir / "cut.tok"),
                       doctest::Contains("header says 100 ids (264 bytes) but the file has 263 bytes"), Error);
  eat::test::write_text(dir / "text.txt", std::string(200, 'x'));
  CHECK_THROWS_WITH_AS(TokenFile(dir / "text.txt"), doctest::Contains("not an eat token file (bad magic"), Error);
  eat::test::write_text(dir / "short.tok", "EATTOK");
  CHECK_THROWS_WITH_AS(TokenFile(dir / "short.tok"), doctest::Contains("too short for the 64-byte header"), Error);
  CHECK_THROWS_WITH_AS(TokenFile(dir / "missing.tok"), doctest::Contains("missing.tok: cannot open"), Error);
  // A count whose byte size wraps around 2^64 (2^63 ids of 2 bytes) is a corrupt header, whatever the file size.
  {
    std::filesystem::copy_file(dir / "ok.tok", dir / "wrap.tok");
    std::fstream f(dir / "wrap.tok", std::ios::in | std::ios::out | std::ios::binary);
    const uint64_t count = uint64_t{1} << 63;
    f.seekp(16);
    f.write(reinterpret_cast<const char*>(&count), sizeof count);
  }
  CHECK_THROWS_WITH_AS(TokenFile(dir / "wrap.tok"), doctest::Contains("more than any file can hold (corrupt header)"), Error);
  // A FIFO would block open() forever: only regular files are read.
  REQUIRE(::mkfifo((dir / "pipe.tok").c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(TokenFile(dir / "pipe.tok"), doctest::Contains("pipe.tok: not a regular file"), Error);
}

TEST_CASE("data: check_ids names the first id outside the vocabulary and its position") {
  TempDir dir("tokids");
  std::vector<int32_t> ids(50, 65);
  ids[37] = 300;
  write_token_file(dir / "wide.tok", ids, 512, "byte", 50);
  TokenFile file(dir / "wide.tok");
  file.check_ids(512, "the file's own");
  CHECK_THROWS_WITH_AS(file.check_ids(257, "model.vocab_size = 257"),
                       doctest::Contains("wide.tok: id 300 at position 37 is outside the vocabulary [0, 257) of "
                                         "model.vocab_size = 257"),
                       Error);
}

TEST_CASE("data: the sample stream is a pure function of (seed, sample index)") {
  TempDir dir("stream");
  std::vector<int32_t> ids(5000);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i % 251);
  write_token_file(dir / "t.tok", ids, 257, "byte", 5000);
  TokenFile f(dir / "t.tok");
  const int64_t T = 64;
  SampleStream a(f, T, 42), b(f, T, 42), c(f, T, 43);
  const int64_t per_epoch = a.samples_per_epoch();
  CHECK(per_epoch == (5000 - T) / T);

  // Sequential reading and random access agree, across an epoch boundary.
  std::vector<int32_t> seq(static_cast<size_t>(3 * per_epoch * (T + 1)));
  a.read(0, 3 * per_epoch, seq.data());
  for (int64_t g : {int64_t{0}, per_epoch - 1, per_epoch, 2 * per_epoch + 5, int64_t{7}}) {
    std::vector<int32_t> one(static_cast<size_t>(T + 1));
    b.read(g, 1, one.data());
    CHECK(std::equal(one.begin(), one.end(), seq.begin() + g * (T + 1)));
  }
  // Each sample is T + 1 consecutive ids of the file.
  for (int64_t g = 0; g < 3 * per_epoch; ++g) {
    const int32_t* s = seq.data() + g * (T + 1);
    bool consecutive = true;
    for (int64_t i = 1; i <= T; ++i) consecutive = consecutive && s[i] == (s[i - 1] + 1) % 251;
    REQUIRE(consecutive);
  }
  // Within an epoch every window is visited once (distinct starts, all T apart).
  std::set<int64_t> starts;
  for (int64_t g = 0; g < per_epoch; ++g) starts.insert(a.sample_start(g));
  CHECK(static_cast<int64_t>(starts.size()) == per_epoch);
  CHECK((*starts.rbegin() - *starts.begin()) == (per_epoch - 1) * T);
  // Epochs are reshuffled and another seed gives another order.
  CHECK(a.sample_start(0) != a.sample_start(per_epoch));
  bool differs = false;
  for (int64_t g = 0; g < 10; ++g) differs = differs || a.sample_start(g) != c.sample_start(g);
  CHECK(differs);
  // A file too short for one sample is refused.
  write_token_file(dir / "tiny.tok", std::vector<int32_t>(100, 1), 257, "byte", 100);
  TokenFile tiny(dir / "tiny.tok");
  CHECK_THROWS_WITH_AS(SampleStream(tiny, 64, 1), doctest::Contains("too few for one training sample"), Error);
}

TEST_CASE("data: tokenize_texts splits at a line boundary and records raw bytes") {
  TempDir dir("corpus");
  std::string doc1, doc2 = "second document\n";
  for (int i = 0; i < 100; ++i) doc1 += "line " + std::to_string(i) + " of the first document\n";
  PreparedCorpus c = tokenize_texts({doc1, doc2}, dir / "out", "byte", 0.1);
  TokenFile train(c.train_path), val(c.val_path);
  CHECK(train.info().raw_bytes + val.info().raw_bytes == static_cast<int64_t>(doc1.size() + doc2.size()));
  // Both documents end with end-of-text; the split is right after a newline.
  CHECK(val[val.size() - 1] == 256);
  CHECK(train[train.size() - 1] == '\n');
  CHECK(train.size() + val.size() == static_cast<int64_t>(doc1.size() + doc2.size()) + 2);
  CHECK_THROWS_WITH_AS(read_text_files({dir / "nope.txt"}), doctest::Contains("cannot read text file"), Error);
  CHECK_THROWS_WITH_AS(tokenize_texts({doc1}, dir / "o2", "byte", 1.5), doctest::Contains("--val-fraction must be in (0, 1)"),
                       Error);
}
