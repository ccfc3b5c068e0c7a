#include "data/mqar.h"

#include <cmath>
#include <filesystem>
#include <unordered_set>

#include "base/error.h"
#include "base/random.h"
#include "data/mask_file.h"
#include "data/token_file.h"

namespace eat::data {

namespace {

int64_t uniform_below(Generator& gen, int64_t n) { return static_cast<int64_t>(gen.next_u64() % static_cast<uint64_t>(n)); }

// k distinct values of [lo, hi).
std::vector<int32_t> distinct(Generator& gen, int64_t k, int64_t lo, int64_t hi) {
  std::vector<int32_t> out;
  std::unordered_set<int32_t> seen;
  while (static_cast<int64_t>(out.size()) < k) {
    const auto v = static_cast<int32_t>(lo + uniform_below(gen, hi - lo));
    if (seen.insert(v).second) out.push_back(v);
  }
  return out;
}

// k distinct slots of [0, weights.size()) drawn one after another with probability proportional
// to the weights of the slots still free (numpy's choice without replacement, as Zoology draws).
std::vector<int64_t> weighted_distinct(Generator& gen, int64_t k, std::vector<double> weights) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < k; ++i) {
    double total = 0;
    for (double w : weights) total += w;
    double u = gen.uniform() * total;
    int64_t pick = static_cast<int64_t>(weights.size()) - 1;
    for (size_t s = 0; s < weights.size(); ++s) {
      if (weights[s] > 0 && (u -= weights[s]) < 0) {
        pick = static_cast<int64_t>(s);
        break;
      }
    }
    while (weights[static_cast<size_t>(pick)] == 0) --pick;  // rounding ran past the end
    out.push_back(pick);
    weights[static_cast<size_t>(pick)] = 0;
  }
  return out;
}

}  // namespace

MqarOptions resolve(MqarOptions o) {
  EAT_CHECK(o.seq_len >= 64 && o.seq_len <= 512 && o.seq_len % 2 == 0, "mqar: --seq-len must be even and in [64, 512], got ",
            o.seq_len);
  if (o.kv_pairs == 0) o.kv_pairs = o.seq_len / 16;
  EAT_CHECK(o.kv_pairs >= 1 && 4 * o.kv_pairs <= o.seq_len, "mqar: --kv-pairs must be in [1, seq_len / 4 = ",
            o.seq_len / 4, "] (the pairs and their queries fill at most the sequence), got ", o.kv_pairs);
  EAT_CHECK(o.vocab > o.seq_len && o.vocab >= 4 * o.kv_pairs && o.vocab <= 65536,
            "mqar: --vocab must exceed seq_len and be at most 65536, got ", o.vocab);
  EAT_CHECK(o.train_examples > 0 && o.val_examples > 0, "mqar: --train-examples and --val-examples must be positive");
  return o;
}

MqarExamples generate_mqar(const MqarOptions& options, int64_t n, uint64_t seed) {
  const MqarOptions o = resolve(options);
  const int64_t R = o.seq_len + 1, N = o.kv_pairs, context = 2 * N;
  const int64_t slots = (o.seq_len - context) / 2;  // query slots: a key at 2s, its value at 2s + 1
  std::vector<double> power(static_cast<size_t>(slots));
  constexpr double a = 0.01;  // Zoology's power_a
  for (int64_t s = 0; s < slots; ++s) power[static_cast<size_t>(s)] = a * std::pow(static_cast<double>(s + 1), a - 1);

  Generator gen(seed * 0x2545F4914F6CDD1Dull + 0x4D51415200000000ull);  // "MQAR": apart from other streams
  MqarExamples ex;
  ex.ids.resize(static_cast<size_t>(n * R));
  ex.scored.assign(static_cast<size_t>(n * R), 0);
  for (int64_t e = 0; e < n; ++e) {
    int32_t* id = ex.ids.data() + e * R;
    uint8_t* scored = ex.scored.data() + e * R;
    const std::vector<int32_t> keys = distinct(gen, N, 1, o.vocab / 2);
    const std::vector<int32_t> values = distinct(gen, N, o.vocab / 2, o.vocab);
    const std::unordered_set<int32_t> key_set(keys.begin(), keys.end());
    for (int64_t i = context; i < R; ++i) {
      int32_t filler;
      do filler = static_cast<int32_t>(uniform_below(gen, o.vocab));
      while (key_set.count(filler));
      id[i] = filler;
    }
    const std::vector<int64_t> slot = weighted_distinct(gen, N, power);
    for (int64_t p = 0; p < N; ++p) {
      id[2 * p] = keys[static_cast<size_t>(p)];
      id[2 * p + 1] = values[static_cast<size_t>(p)];
      const int64_t q = context + 2 * slot[static_cast<size_t>(p)];
      id[q] = keys[static_cast<size_t>(p)];
      id[q + 1] = values[static_cast<size_t>(p)];
      scored[q + 1] = 1;
    }
  }
  return ex;
}

PreparedMqar prepare_mqar(const MqarOptions& options, const std::string& out_dir) {
  const MqarOptions o = resolve(options);
  std::filesystem::create_directories(out_dir);
  PreparedMqar p;
  p.kv_pairs = o.kv_pairs;
  p.train_path = (std::filesystem::path(out_dir) / "train.tok").string();
  p.val_path = (std::filesystem::path(out_dir) / "val.tok").string();
  auto write = [&](const std::string& path, int64_t n, uint64_t seed) {
    MqarExamples ex = generate_mqar(o, n, seed);
    write_token_file(path, ex.ids, o.vocab, "mqar", 0);
    write_mask_file(mask_path_for(path), ex.scored, o.seq_len + 1);
  };
  write(p.train_path, o.train_examples, o.seed);
  write(p.val_path, o.val_examples, o.seed + 10);
  return p;
}

}  // namespace eat::data
