// eat compare's reading of run directories: the table's numbers are the runs' own metrics, the
// JSON parses, the plot names every run, missing pieces are n/a and a non-run is refused.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "data/corpus.h"
#include "framework/train/placement.h"
#include "framework/train/run_summary.h"
#include "temp_dir.h"
#include "tiny_run.h"

using namespace eat;
using eat::test::quiet;

namespace {

std::vector<nlohmann::json> metrics_lines(const std::string& run_dir) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string text; std::getline(in, text);) lines.push_back(nlohmann::json::parse(text));
  return lines;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

TEST_CASE("compare: two runs' table, JSON and plot carry the runs' own metrics") {
  eat::test::TempDir dir("compare");
  data::tokenize_texts({eat::test::synthetic_text(1500)}, dir / "data", "byte", 0.1);
  const std::string text = eat::test::recipe_text(dir.str());
  // 12 steps of 4 x 32 tokens; the second run validates only at steps 6 and 12.
  const Recipe recipe_a = parse_recipe(text, "a.toml", {"run.name=\"alpha\""});
  TrainResult a = train(recipe_a, quiet());
  TrainResult b = train(parse_recipe(text, "b.toml", {"run.name=\"beta\"", "eval.every=6", "optimizer.lr=1e-3"}), quiet());
  const std::vector<RunSummary> runs = summarize_runs({a.run_dir, b.run_dir});
  REQUIRE(runs.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    const RunSummary& s = runs[i];
    const TrainResult& res = i == 0 ? a : b;
    CAPTURE(s.name);
    std::vector<double> losses, tps, mfu;
    double wall = 0, val_loss = 0, val_ppl = 0, val_bpb = 0;
    for (const nlohmann::json& j : metrics_lines(res.run_dir)) {
      if (j.contains("loss")) {
        losses.push_back(j["loss"]);
        tps.push_back(j["tokens_per_s"]);
        mfu.push_back(j["mfu"]);
        wall += j["step_seconds"].get<double>();
      }
      if (j.contains("val_loss")) val_loss = j["val_loss"], val_ppl = j["val_ppl"], val_bpb = j["val_bpb"];
    }
    REQUIRE(losses.size() == 12);
    double last10 = 0;
    for (size_t k = 2; k < 12; ++k) last10 += losses[k];
    CHECK(s.name == (i == 0 ? "alpha" : "beta"));
    CHECK(*s.family == "transformer");
    CHECK(*s.parameters == build_placed_model(recipe_a)->num_parameters());
    CHECK(*s.steps == 12);
    CHECK(*s.tokens_seen == 12 * 4 * 32);
    CHECK(s.final_loss_steps == 10);
    CHECK(*s.train_loss == doctest::Approx(last10 / 10).epsilon(1e-15));
    CHECK(*s.val_loss == val_loss);
    CHECK(*s.val_loss == res.last_val_loss);
    CHECK(*s.val_ppl == val_ppl);
    CHECK(*s.val_bpb == val_bpb);
    CHECK(*s.tokens_per_s == median_of(tps));
    CHECK(*s.mfu == median_of(mfu));
    CHECK(*s.wall_seconds == doctest::Approx(wall).epsilon(1e-12));
    CHECK(!s.peak_memory_bytes);  // logged by GPU runs only
    CHECK(s.train_tokens.size() == 12);
    CHECK(s.train_tokens.back() == 12 * 4 * 32);
    CHECK(s.val_tokens.size() == (i == 0 ? 3u : 2u));
  }

  const std::string table = compare_markdown(runs);
  char row[128];
  std::snprintf(row, sizeof row, "| alpha | transformer | %lld | 1536 | %.4f | %.4f | %.3f | %.4f |",
                static_cast<long long>(*runs[0].parameters), *runs[0].train_loss, *runs[0].val_loss, *runs[0].val_ppl,
                *runs[0].val_bpb);
  CHECK_MESSAGE(table.find(row) != std::string::npos, table);
  CHECK(table.find("| n/a | ") != std::string::npos);  // peak memory of a CPU run

  const nlohmann::json parsed = nlohmann::json::parse(compare_json(runs).dump());
  REQUIRE(parsed.size() == 2);
  CHECK(parsed[1]["run"] == "beta");
  CHECK(parsed[1]["val_loss"].get<double>() == *runs[1].val_loss);
  CHECK(parsed[1]["tokens_seen"] == 1536);
  CHECK(parsed[1]["peak_memory_bytes"].is_null());

  const std::string svg = compare_svg(runs);
  CHECK(svg.find(">alpha</text>") != std::string::npos);
  CHECK(svg.find(">beta</text>") != std::string::npos);
  CHECK(std::count(svg.begin(), svg.end(), '\n') > 5);
  CHECK(svg.find("<circle") != std::string::npos);
}

TEST_CASE("compare: missing pieces are n/a, same-named runs are told apart, a non-run is refused") {
  eat::test::TempDir dir("compare-partial");
  // A run stopped before its first checkpoint or validation: one logged step, no throughput.
  std::filesystem::create_directories(dir / "a/x");
  std::filesystem::create_directories(dir / "b/x");
  eat::test::write_text(dir / "a/x/metrics.jsonl", "{\"step\": 1, \"loss\": 5.5}\n{\"step\": 2, \"lo");
  eat::test::write_text(dir / "b/x/metrics.jsonl", "");
  const std::vector<RunSummary> runs = summarize_runs({dir / "a/x", dir / "b/x"});
  CHECK(runs[0].name == dir / "a/x");
  CHECK(*runs[0].train_loss == 5.5);
  CHECK(runs[0].final_loss_steps == 1);
  CHECK(!runs[0].family);
  CHECK(!runs[0].tokens_seen);
  CHECK(!runs[1].train_loss);
  const std::string table = compare_markdown(runs);
  CHECK_MESSAGE(table.find("| n/a | n/a | n/a | 5.5000 | n/a | n/a | n/a | n/a | n/a | n/a | n/a |") != std::string::npos,
                table);
  CHECK(compare_json(runs)[0]["val_loss"].is_null());
  CHECK(compare_svg(runs).find("(no checkpoint: not drawn)") != std::string::npos);

  CHECK_THROWS_WITH_AS(summarize_run(dir.str()), doctest::Contains((dir.str() + " is not a run directory").c_str()), Error);
}
