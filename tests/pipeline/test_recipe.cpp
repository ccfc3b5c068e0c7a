#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "framework/config/recipe.h"
#include "base/error.h"
#include "framework/storage.h"

using namespace eat;

// Checks that a string contains a fragment, printing the whole string when it does not.
#define CHECK_CONTAINS(text, fragment)                                                  \
  do {                                                                                  \
    std::string text_ = (text);                                                         \
    CHECK_MESSAGE(text_.find(fragment) != std::string::npos, "got: " << text_);         \
  } while (0)

namespace {

const char* kValid = R"(
[run]
name = "tiny"
seed = 7

[model]
family = "transformer"
d_model = 32
n_layers = 2
n_heads = 4

[model.transformer]
mlp_hidden = 48
tie_embeddings = true

[data]
train = "train.tok"
val = "val.tok"
seq_len = 64

[train]
steps = 10
global_batch = 4
micro_batch = 2

[optimizer]
lr = 1e-3
betas = [0.9, 0.99]

[schedule]
kind = "wsd"
warmup = 2
)";

// The message of the error that parsing raises.
std::string error_of(const std::string& text, const std::vector<std::string>& sets = {}) {
  try {
    parse_recipe(text, "r.toml", sets);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  size_t p = s.find(from);
  REQUIRE(p != std::string::npos);
  return s.replace(p, from.size(), to);
}

}  // namespace

TEST_CASE("recipe: a valid recipe parses with defaults filled in") {
  Recipe r = parse_recipe(kValid, "r.toml");
  CHECK(r.run.name == "tiny");
  CHECK(r.run.seed == 7);
  CHECK(r.run.out_dir == "runs");
  CHECK(r.model.family == "transformer");
  CHECK(r.model.d_model == 32);
  CHECK(r.model.vocab_size == 257);
  CHECK(r.model.options.get_int("mlp_hidden") == 48);
  CHECK(r.model.options.get_bool("tie_embeddings"));
  CHECK(r.model.options.get_float("rope_theta") == 10000.0);  // family default
  CHECK(r.data.seq_len == 64);
  CHECK(r.train.micro_batch == 2);
  CHECK(r.optimizer.beta2 == 0.99);
  CHECK(r.schedule.kind == "wsd");
  CHECK(r.parallel.sp == 1);
  CHECK(!r.text.empty());
  // The effective text parses back to the same recipe.
  Recipe again = parse_recipe(r.text, "copy.toml");
  CHECK(recipe_hash(again) == recipe_hash(r));
}

TEST_CASE("recipe: errors name the file, line and key") {
  CHECK_CONTAINS(error_of(replace(kValid, "seq_len = 64", "seq_len = \"long\"")), "r.toml:19:11: data.seq_len: expected an integer, got a string ('long')");
  CHECK_CONTAINS(error_of(replace(kValid, "steps = 10", "steps = 10\nstpes = 3")), "r.toml:23:9: train.stpes: unknown key (known in [train]: device, global_batch, grad_clip, micro_batch, precision, steps, tf32)");
  CHECK_CONTAINS(error_of(replace(kValid, "n_heads = 4", "n_heads = 5")), "r.toml:10:11: model.n_heads: = 5: must be positive and divide model.d_model = 32");
  CHECK_CONTAINS(error_of(replace(kValid, "family = \"transformer\"", "family = \"gpt9\"")), "model.family: unknown model family \"gpt9\" (known: transformer");
  CHECK_CONTAINS(error_of(replace(kValid, "[model.transformer]", "[model.rat]")), "table [model.rat] does not match model.family = \"transformer\"");
  CHECK_CONTAINS(error_of(replace(kValid, "mlp_hidden = 48", "mlp_hiden = 48")), "model.transformer.mlp_hiden: unknown key for family 'transformer'");
  CHECK_CONTAINS(error_of(replace(kValid, "[run]\nname = \"tiny\"", "[run]")), "r.toml: run.name is required");
  CHECK_CONTAINS(error_of(replace(kValid, "train = \"train.tok\"", "train = \"\"")), "r.toml:17:9: data.train: = \"\": must name a token file");
  CHECK_CONTAINS(error_of(replace(kValid, "steps = 10", "steps = 0")), "train.steps: = 0: must be positive");
  CHECK_CONTAINS(error_of(replace(kValid, "betas = [0.9, 0.99]", "betas = [0.9]")), "optimizer.betas: expected two numbers");
  CHECK_CONTAINS(error_of(replace(kValid, "kind = \"wsd\"", "kind = \"cosin\"")), "schedule.kind");
  CHECK_CONTAINS(error_of(replace(kValid, "warmup = 2", "warmup = 10")), "schedule.warmup: = 10: must be in [0, train.steps = 10)");
  CHECK_CONTAINS(error_of(kValid, {"parallel.chain_slices=-1"}),
                 "--set parallel.chain_slices=-1: parallel.chain_slices: = -1: must be >= 0 (0: one slice per sequence)");
  CHECK_CONTAINS(error_of(std::string(kValid) + "\n[bogus]\nx = 1\n"), "bogus: unknown section");
  CHECK_CONTAINS(error_of(replace(kValid, "[data]", "[data")), "r.toml:16:6: TOML syntax error");
  CHECK_CONTAINS(error_of(replace(kValid, "d_model = 32", "d_model = 30")), "must be positive and divide model.d_model = 30");
  // Head dimension odd: the family's own check.
  CHECK_CONTAINS(error_of(replace(kValid, "d_model = 32", "d_model = 36")), "must be even for RoPE");
}

TEST_CASE("recipe: the family manifest checks choices and renamed keys, naming file:line:col") {
  CHECK_CONTAINS(error_of(replace(kValid, "tie_embeddings = true", "tie_embeddings = true\nattention = \"flash\"")),
                 "r.toml:15:13: model.transformer.attention: = \"flash\": must be \"tiled\" or \"naive\"");
  CHECK_CONTAINS(error_of(replace(kValid, "mlp_hidden = 48", "ffn_hidden = 48")),
                 "r.toml:13:14: model.transformer.ffn_hidden: renamed to mlp_hidden (write model.transformer.mlp_hidden)");
  CHECK_CONTAINS(error_of(kValid, {"model.transformer.ffn_hidden=64"}),
                 "--set model.transformer.ffn_hidden=64: model.transformer.ffn_hidden: renamed to mlp_hidden");
  const std::string tnl = replace(replace(kValid, "family = \"transformer\"", "family = \"transnormer\""),
                                  "[model.transformer]\nmlp_hidden = 48\ntie_embeddings = true", "[model.transnormer]\nmlp_hidden = 48");
  CHECK_CONTAINS(error_of(replace(tnl, "mlp_hidden", "glu_hidden")), "r.toml:13:14: model.transnormer.glu_hidden: renamed to mlp_hidden");
  CHECK_CONTAINS(error_of(tnl, {"model.transnormer.attention=fast"}), "must be \"chunked\", \"recurrent\" or \"naive\"");
  // A recipe stored in a checkpoint made before the rename still loads, its key under the new name.
  const Recipe old = parse_recipe(replace(tnl, "mlp_hidden", "glu_hidden"), "ck/recipe.toml", {}, RenamedKeys::migrate);
  CHECK(old.model.options.get_int("mlp_hidden") == 48);
  const Recipe both = parse_recipe(replace(tnl, "mlp_hidden = 48", "mlp_hidden = 48\nglu_hidden = 64"), "ck/recipe.toml", {},
                                   RenamedKeys::migrate);
  CHECK(both.model.options.get_int("mlp_hidden") == 48);  // the new name wins
  for (const std::string& family : family_names()) {  // every declared choice is accepted
    CAPTURE(family);
    for (const OptionSpec& o : find_family(family)->options)
      for (const OptionChoice& c : o.choices) {
        const std::string text = replace(replace(kValid, "family = \"transformer\"", "family = \"" + family + "\""),
                                         "[model.transformer]\nmlp_hidden = 48\ntie_embeddings = true",
                                         "[model." + family + "]\n" + o.name + " = \"" + c.value + "\"");
        CHECK(parse_recipe(text, "r.toml").model.options.get_string(o.name) == c.value);
      }
  }
}

TEST_CASE("recipe: a family check that spans keys names the key it starts with (rat's chunk under parallel.sp)") {
  const std::string rat = replace(replace(kValid, "family = \"transformer\"", "family = \"rat\""),
                                  "[model.transformer]\nmlp_hidden = 48\ntie_embeddings = true", "[model.rat]\nchunk = 16");
  CHECK(error_of(rat, {"parallel.sp=2"}) == "(no error)");  // 32 tokens per rank: 2 chunks each
  CHECK_CONTAINS(error_of(rat, {"parallel.sp=8"}),
                 "r.toml:13:9: model.rat.chunk: chunk = 16: under parallel.sp = 8 each rank holds whole chunks, but "
                 "data.seq_len / sp = 8 tokens is not a multiple of it");
  CHECK_CONTAINS(error_of(rat, {"model.rat.ngroups=3"}), "model.rat.ngroups: ngroups = 3 must divide model.n_heads = 4");
}

TEST_CASE("recipe: inf and nan are refused at every float key, the family's options too") {
  CHECK_CONTAINS(error_of(kValid, {"optimizer.lr=inf"}), "optimizer.lr: = inf: must be a finite number");
  CHECK_CONTAINS(error_of(kValid, {"optimizer.weight_decay=nan"}), "optimizer.weight_decay: = nan: must be a finite number");
  CHECK_CONTAINS(error_of(kValid, {"model.init_std=inf"}), "model.init_std: = inf: must be a finite number");
  CHECK_CONTAINS(error_of(kValid, {"model.transformer.rope_theta=nan"}), "model.transformer.rope_theta: = nan");
  CHECK_CONTAINS(error_of(kValid, {"optimizer.betas=[0.9, inf]"}), "inf ]: must be finite numbers");
}

TEST_CASE("recipe: every family's rope_theta must be > 0 and norm_eps >= 0, refused at file:line:col") {
  int checked = 0;
  for (const std::string& family : family_names()) {
    for (const OptionSpec& o : find_family(family)->options) {
      if (o.name != "rope_theta" && o.name != "norm_eps") continue;
      CAPTURE(family);
      auto with = [&](const std::string& value) {
        return replace(replace(kValid, "family = \"transformer\"", "family = \"" + family + "\""),
                       "[model.transformer]\nmlp_hidden = 48\ntie_embeddings = true",
                       "[model." + family + "]\n" + o.name + " = " + value);
      };
      const std::string at = "r.toml:13:" + std::to_string(o.name.size() + 4) + ": model." + family + "." + o.name + ": = ";
      if (o.name == "rope_theta") {
        CHECK(error_of(with("0.0")) == at + "0: must be > 0");
        CHECK(error_of(with("-10000.0")) == at + "-10000: must be > 0");
      } else {
        CHECK(error_of(with("-1e-6")) == at + "-1e-06: must be >= 0");
        CHECK(error_of(with("0.0")).find("norm_eps") == std::string::npos);  // 0 is a valid epsilon
      }
      ++checked;
    }
  }
  CHECK(checked >= 9);  // five families with norm_eps, four with rope_theta
}

TEST_CASE("recipe: run.name is one plain path component") {
  for (const char* name : {".", "..", "a/b", "a\\b"}) {
    CAPTURE(name);
    CHECK_CONTAINS(error_of(kValid, {std::string("run.name=") + name}), "run.name");
  }
  CHECK(error_of(kValid, {"run.name=..x"}) == "(no error)");
}

TEST_CASE("recipe: --set overrides go through the same validation") {
  Recipe r = parse_recipe(kValid, "r.toml", {"train.steps=50", "run.name=other", "model.transformer.rope_theta=500000",
                                            "optimizer.betas=[0.8, 0.9]", "parallel.sp=2"});
  CHECK(r.train.steps == 50);
  CHECK(r.run.name == "other");  // bare strings need no quotes
  CHECK(r.model.options.get_float("rope_theta") == 500000.0);
  CHECK(r.optimizer.beta1 == 0.8);
  CHECK(r.parallel.sp == 2);
  CHECK(r.text.find("steps = 50") != std::string::npos);
  CHECK_CONTAINS(error_of(kValid, {"train.steps=abc"}), "--set train.steps=abc: train.steps: expected an integer, got a string");
  CHECK_CONTAINS(error_of(kValid, {"train.stepz=3"}), "--set train.stepz=3: train.stepz: unknown key");
  CHECK_CONTAINS(error_of(kValid, {"steps=3"}), "the key needs its section");
  CHECK_CONTAINS(error_of(kValid, {"train.steps"}), "expected section.key=value");
  CHECK_CONTAINS(error_of(kValid, {"data.seq_len=63", "parallel.sp=2"}), "data.seq_len: = 63: must be divisible by parallel.sp = 2");
}

TEST_CASE("recipe: device, precision and tf32 are checked together") {
  Recipe cpu = parse_recipe(kValid, "r.toml");
  CHECK(cpu.train.device == "cpu");
  CHECK(cpu.device() == Device::cpu);
  CHECK(!cpu.train.tf32);
  cpu.check_device();  // the CPU is always there
  Recipe gpu = parse_recipe(kValid, "r.toml", {"train.device=cuda", "train.precision=bf16"});
  CHECK(gpu.device() == Device::cuda);
  CHECK(gpu.train.precision == "bf16");
  CHECK(parse_recipe(kValid, "r.toml", {"train.device=cuda", "train.tf32=true"}).train.tf32);
  CHECK_CONTAINS(error_of(kValid, {"train.device=tpu"}), "--set train.device=tpu: train.device: = tpu: must be \"cpu\" or \"cuda\"");
  CHECK_CONTAINS(error_of(replace(kValid, "steps = 10", "steps = 10\nprecision = \"bf16\"")),
                 "r.toml:23:13: train.precision: = bf16: must be \"f32\" or \"f64\" with train.device = \"cpu\"");
  CHECK_CONTAINS(error_of(kValid, {"train.device=cuda", "train.precision=f64"}),
                 "train.precision: = f64: must be \"f32\" or \"bf16\" with train.device = \"cuda\"");
  CHECK_CONTAINS(error_of(kValid, {"train.precision=f16"}), "train.precision: = f16: must be");
  CHECK_CONTAINS(error_of(replace(kValid, "steps = 10", "steps = 10\ntf32 = true")),
                 "r.toml:23:8: train.tf32: = true: TF32 matmuls apply to train.device = \"cuda\" with train.precision = \"f32\" only");
  CHECK_CONTAINS(error_of(kValid, {"train.device=cuda", "train.precision=bf16", "train.tf32=true"}), "train.tf32: = true");
  CHECK_CONTAINS(error_of(kValid, {"train.tf32=1"}), "train.tf32: expected true or false");
  // Without a device the key's own position is named, from the file or from the override.
  if (!cuda_available()) {
    Recipe in_file = parse_recipe(replace(kValid, "steps = 10", "steps = 10\ndevice = \"cuda\""), "r.toml");
    std::string why;
    try {
      in_file.check_device();
    } catch (const Error& e) {
      why = e.what();
    }
    CHECK_CONTAINS(why, "r.toml:23:10: train.device: = \"cuda\", but ");
#ifdef EAT_WITH_CUDA
    CHECK_CONTAINS(why, "no CUDA device is visible");
#else
    CHECK_CONTAINS(why, "this eat was built without CUDA");
#endif
    CHECK_THROWS_WITH_AS(gpu.check_device(), doctest::Contains("--set train.device=cuda: train.device"), Error);
  }
}

TEST_CASE("recipe: world-size checks") {
  Recipe r = parse_recipe(kValid, "r.toml", {"parallel.sp=2"});
  r.check_world(2);
  r.check_world(4);
  CHECK_THROWS_WITH_AS(r.check_world(3), doctest::Contains("parallel.sp = 2 does not divide the world size 3"), Error);
  CHECK_THROWS_WITH_AS(r.check_world(16), doctest::Contains("train.global_batch = 4 does not split over 8 data-parallel ranks"),
                       Error);
  Recipe m = parse_recipe(kValid, "r.toml", {"train.micro_batch=3"});
  CHECK_THROWS_WITH_AS(m.check_world(1), doctest::Contains("train.micro_batch = 3 does not divide the per-rank batch 4"),
                       Error);
}

TEST_CASE("recipe: the shipped recipes parse") {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(EAT_SOURCE_DIR "/recipes")) {
    if (entry.path().extension() != ".toml") continue;
    std::string path = entry.path().string();
    CAPTURE(path);
    CHECK_NOTHROW(load_recipe(path));
    ++count;
  }
  CHECK(count >= 4);
  CHECK_THROWS_WITH_AS(load_recipe("/nonexistent/x.toml"), doctest::Contains("recipe /nonexistent/x.toml: cannot read"), Error);
}
