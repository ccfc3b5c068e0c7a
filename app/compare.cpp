// eat compare RUN_DIR... [--json] [--out FILE.svg]: the runs side by side (a markdown table or
// JSON) and their loss curves against tokens seen on one plot.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "app/commands.h"
#include "base/error.h"
#include "framework/train/run_summary.h"

namespace eat::cli {

void add_compare_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("compare", "Compare training runs: a table of their results and compare.svg of their loss curves");
  auto dirs = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  auto out = std::make_shared<std::string>("compare.svg");
  cmd->add_option("runs", *dirs, "Run directories (each holds metrics.jsonl and checkpoints/)")->required();
  cmd->add_flag("--json", *json, "Print a JSON array (one object a run, null for what the run did not record)");
  cmd->add_option("--out", *out, "Where to write the loss curves")->capture_default_str();
  cmd->callback([dirs, json, out] {
    const std::vector<RunSummary> runs = summarize_runs(*dirs);
    {
      std::ofstream svg(*out, std::ios::trunc);
      EAT_CHECK(svg, "compare: cannot write ", *out);
      svg << compare_svg(runs);
    }
    if (*json) {
      std::printf("%s\n", compare_json(runs).dump(2).c_str());
    } else {
      std::printf("%s", compare_markdown(runs).c_str());
      std::fprintf(stderr, "loss curves: %s\n", out->c_str());  // stdout stays the table alone
    }
  });
}

}  // namespace eat::cli
