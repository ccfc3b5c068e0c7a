#pragma once
// Multi-query associative recall (MQAR), after the Zoology generator the BASED paper evaluates
// with. An example is seq_len + 1 ids: kv_pairs key-value pairs (keys from [1, vocab/2), values
// from [vocab/2, vocab), no key or value twice in an example), then a query region where every key
// comes back once, followed by its value; the rest of the region is filler. Query positions
// follow Zoology's power law (a = 0.01): pair slots near the start of the region are likelier.
// Only the values after the queries are scored (the mask); the model must recall them from the
// prefix. Two differences from Zoology, both so the data are an ordinary token stream: the
// answer stands in the stream after its query (Zoology leaves filler there; a causal model
// predicts it before seeing it either way), and filler never draws one of the example's keys
// (so no key is repeated within an example).
#include <cstdint>
#include <string>
#include <vector>

namespace eat::data {

struct MqarOptions {
  int64_t vocab = 8192;
  int64_t seq_len = 256;
  int64_t kv_pairs = 0;  // 0: seq_len / 16, the ratio of Zoology's defaults (4 pairs in 64 tokens)
  int64_t train_examples = 100000;  // Zoology's defaults
  int64_t val_examples = 3000;
  uint64_t seed = 0;  // validation examples use seed + 10, as Zoology's test set does
};

// The options with kv_pairs resolved and checked: seq_len even in [64, 512], 4 * kv_pairs <= seq_len
// (Zoology's bound), vocab > seq_len.
MqarOptions resolve(MqarOptions o);

struct MqarExamples {
  std::vector<int32_t> ids;     // examples back to back, seq_len + 1 each
  std::vector<uint8_t> scored;  // 1 at each answer (a value following its query)
};

// n examples from seed; a pure function of (options, n, seed).
MqarExamples generate_mqar(const MqarOptions& options, int64_t n, uint64_t seed);

struct PreparedMqar {
  std::string train_path, val_path;
  int64_t kv_pairs = 0;
};

// Writes DIR/train.tok, DIR/train.mask, DIR/val.tok, DIR/val.mask.
PreparedMqar prepare_mqar(const MqarOptions& options, const std::string& out_dir);

}  // namespace eat::data
