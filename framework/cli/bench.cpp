#include "framework/cli/commands.h"

namespace eat::cli {
void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks");
  (void)bench;
}
}  // namespace eat::cli
