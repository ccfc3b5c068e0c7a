// MQAR examples and their loss masks: the generator, the mask files and the sample stream over
// masked data.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <set>

#include "base/error.h"
#include "data/loader.h"
#include "data/mask_file.h"
#include "data/mqar.h"
#include "data/token_file.h"
#include "temp_dir.h"

using namespace eat;
using namespace eat::data;
using eat::test::TempDir;

namespace {

MqarOptions small_options() {
  MqarOptions o;
  o.vocab = 512;
  o.seq_len = 64;
  o.kv_pairs = 8;
  o.train_examples = 40;
  o.val_examples = 10;
  o.seed = 3;
  return o;
}

}  // namespace

TEST_CASE("mqar: every answer is recoverable from its example's key-value prefix") {
  const MqarOptions o = small_options();
  const int64_t R = o.seq_len + 1, n = 200;
  const MqarExamples ex = generate_mqar(o, n, 7);
  REQUIRE(ex.ids.size() == static_cast<size_t>(n * R));
  REQUIRE(ex.scored.size() == ex.ids.size());
  for (int64_t e = 0; e < n; ++e) {
    const int32_t* id = ex.ids.data() + e * R;
    const uint8_t* scored = ex.scored.data() + e * R;
    std::map<int32_t, int32_t> value_of;  // the prefix's pairs
    std::set<int32_t> values;
    for (int64_t p = 0; p < o.kv_pairs; ++p) {
      const int32_t key = id[2 * p], value = id[2 * p + 1];
      CHECK((key >= 1 && key < o.vocab / 2));
      CHECK((value >= o.vocab / 2 && value < o.vocab));
      CHECK(value_of.emplace(key, value).second);  // no key twice in the prefix
      CHECK(values.insert(value).second);
    }
    int64_t answers = 0;
    std::map<int32_t, int> queried;
    for (int64_t i = 0; i < R; ++i) {
      if (i < 2 * o.kv_pairs) {
        CHECK(scored[i] == 0);
        continue;
      }
      if (value_of.count(id[i])) ++queried[id[i]];  // a key outside the prefix is a query
      if (!scored[i]) continue;
      ++answers;
      INFO("example " << e << " position " << i);
      REQUIRE(value_of.count(id[i - 1]) == 1);  // the query right before the answer is a key ...
      CHECK(id[i] == value_of[id[i - 1]]);       // ... and the answer its value
    }
    CHECK(answers == o.kv_pairs);
    CHECK(queried.size() == static_cast<size_t>(o.kv_pairs));  // every key is queried ...
    for (const auto& [key, times] : queried) CHECK(times == 1);  // ... once: no key repeated after the prefix either
  }
}

TEST_CASE("mqar: examples are a pure function of the options and the seed") {
  const MqarOptions o = small_options();
  const MqarExamples a = generate_mqar(o, 30, 11), b = generate_mqar(o, 30, 11), c = generate_mqar(o, 30, 12);
  CHECK(a.ids == b.ids);
  CHECK(a.scored == b.scored);
  CHECK(a.ids != c.ids);
  // The first examples do not depend on how many are drawn.
  const MqarExamples shorter = generate_mqar(o, 10, 11);
  CHECK(std::equal(shorter.ids.begin(), shorter.ids.end(), a.ids.begin()));
}

TEST_CASE("mqar: prepare writes the counts asked for, with masks beside the token files") {
  TempDir dir("mqar");
  const MqarOptions o = small_options();
  const PreparedMqar p = prepare_mqar(o, dir / "mq");
  CHECK(p.kv_pairs == 8);
  TokenFile train(p.train_path), val(p.val_path);
  CHECK(train.size() == o.train_examples * (o.seq_len + 1));
  CHECK(val.size() == o.val_examples * (o.seq_len + 1));
  CHECK(train.info().vocab_size == o.vocab);
  CHECK(train.info().tokenizer == "mqar");
  auto train_mask = open_mask_beside(train);
  REQUIRE(train_mask);
  CHECK(train_mask->path() == dir / "mq/train.mask");
  CHECK(train_mask->record_len() == o.seq_len + 1);
  int64_t scored = 0;
  for (int64_t i = 0; i < train_mask->size(); ++i) scored += train_mask->scored(i);
  CHECK(scored == o.train_examples * o.kv_pairs);
  // Validation draws from seed + 10; the same seed writes the same files.
  const MqarExamples val_again = generate_mqar(o, o.val_examples, o.seed + 10);
  for (int64_t i = 0; i < val.size(); ++i) REQUIRE(val[i] == val_again.ids[static_cast<size_t>(i)]);
}

TEST_CASE("mqar: defaults and bad options") {
  MqarOptions o;
  CHECK(resolve(o).kv_pairs == 16);  // seq_len 256 / 16
  o.seq_len = 64;
  CHECK(resolve(o).kv_pairs == 4);  // Zoology's default pair: 4 pairs in 64 tokens
  o.kv_pairs = 17;
  CHECK_THROWS_WITH_AS(resolve(o), doctest::Contains("--kv-pairs must be in [1, seq_len / 4 = 16]"), Error);
  o.kv_pairs = 0;
  o.seq_len = 65;
  CHECK_THROWS_WITH_AS(resolve(o), doctest::Contains("--seq-len must be even and in [64, 512]"), Error);
  o.seq_len = 1024;
  CHECK_THROWS_WITH_AS(resolve(o), doctest::Contains("--seq-len must be even and in [64, 512]"), Error);
  o.seq_len = 128;
  o.vocab = 100;
  CHECK_THROWS_WITH_AS(resolve(o), doctest::Contains("--vocab must exceed seq_len"), Error);
}

TEST_CASE("mask files: missing, mismatched, foreign and truncated masks are refused, naming the file") {
  TempDir dir("mask");
  write_token_file(dir / "t.tok", std::vector<int32_t>(20, 1), 257, "byte", 20);
  TokenFile tokens(dir / "t.tok");
  CHECK(mask_path_for(dir / "t.tok") == dir / "t.mask");
  CHECK(mask_path_for(dir / "t.bin") == dir / "t.bin.mask");
  CHECK(open_mask_beside(tokens) == nullptr);  // none: the data are unmasked
  CHECK_THROWS_WITH_AS(MaskFile(dir / "t.mask", tokens), doctest::Contains("t.mask: cannot open"), Error);

  write_mask_file(dir / "t.mask", std::vector<uint8_t>(30, 1), 10);  // 30 bytes for 20 ids
  CHECK_THROWS_WITH_AS(open_mask_beside(tokens),
                       doctest::Contains(("t.mask: 30 mask bytes for the 20 ids of " + dir / "t.tok").c_str()), Error);
  write_mask_file(dir / "t.mask", std::vector<uint8_t>(20, 1), 10);
  CHECK(open_mask_beside(tokens)->size() == 20);
  std::filesystem::resize_file(dir / "t.mask", 64 + 19);
  CHECK_THROWS_WITH_AS(MaskFile(dir / "t.mask", tokens), doctest::Contains("header says 20 bytes but the file holds 19"), Error);
  std::filesystem::copy_file(dir / "t.tok", dir / "t.mask", std::filesystem::copy_options::overwrite_existing);
  CHECK_THROWS_WITH_AS(MaskFile(dir / "t.mask", tokens), doctest::Contains("t.mask: not an eat mask file"), Error);

  CHECK_THROWS_WITH_AS(write_mask_file(dir / "u.mask", std::vector<uint8_t>(20, 2), 10), doctest::Contains("not 0 or 1"), Error);
  CHECK_THROWS_WITH_AS(write_mask_file(dir / "u.mask", std::vector<uint8_t>(21, 1), 10),
                       doctest::Contains("not whole records of 10"), Error);
}

TEST_CASE("data: over masked data the stream's samples are whole examples, with their mask") {
  TempDir dir("maskstream");
  MqarOptions o = small_options();
  const PreparedMqar p = prepare_mqar(o, dir / "mq");
  TokenFile file(p.train_path);
  auto mask = open_mask_beside(file);
  const int64_t R = o.seq_len + 1;
  SampleStream stream(file, o.seq_len, 5, mask.get());
  CHECK(stream.samples_per_epoch() == o.train_examples);
  std::set<int64_t> starts;
  for (int64_t g = 0; g < o.train_examples; ++g) {
    const int64_t s = stream.sample_start(g);
    CHECK(s % R == 0);
    starts.insert(s);
  }
  CHECK(starts.size() == static_cast<size_t>(o.train_examples));  // an epoch visits every example once
  std::vector<uint8_t> bytes(static_cast<size_t>(3 * R));
  stream.read_mask(4, 3, bytes.data());
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < R; ++j) CHECK(bytes[static_cast<size_t>(i * R + j)] == mask->scored(stream.sample_start(4 + i) + j));
  CHECK(stream.scored_targets(4, 3) == 3 * o.kv_pairs);
  CHECK_THROWS_WITH_AS(SampleStream(file, 32, 5, mask.get()),
                       doctest::Contains("holds examples of 65 ids, which need data.seq_len = 64; the recipe has seq_len 32"),
                       Error);
}
