// eat: the command-line entry point. Each subcommand lives in its own file under app/.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <string>

#include "app/commands.h"
#include "framework/comm/communicator.h"
#include "framework/float_mode.h"
#include "framework/train/stop_vote.h"
#include "base/error.h"
#include "framework/version.h"

int main(int argc, char** argv) {
  // Before anything slow (MPI, the data, the model): a stop during set-up ends the run cleanly.
  if (argc > 1 && std::string(argv[1]) == "train") eat::catch_stop_signals_early();
  eat::flush_denormals_to_zero();  // before the first parallel region
  CLI::App app{"eat: efficient-attention trainer"};
  app.require_subcommand(0, 1);
  bool show_version = false;
  app.add_flag("--version", show_version, "Print the version and build features, then exit");
  eat::cli::add_train_command(app);
  eat::cli::add_eval_command(app);
  eat::cli::add_generate_command(app);
  eat::cli::add_data_command(app);
  eat::cli::add_info_command(app);
  eat::cli::add_compare_command(app);
  eat::cli::add_export_command(app);
  eat::cli::add_bench_command(app);
  try {
    app.parse(argc, argv);  // subcommands run from their callbacks inside parse()
    if (show_version) {
      std::cout << "eat " << eat::version() << " (" << eat::cli::build_features() << ")\n";
    } else if (app.get_subcommands().empty()) {
      std::cout << app.help();
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const eat::AgreedError& e) {
    // Every rank knows of it: each leaves MPI normally, one of them says why.
    if (e.print) std::fprintf(stderr, "eat: error: %s\n", e.what());
    eat::finalize_job();
    return 1;
  } catch (const std::exception& e) {
    // Under mpirun this takes every rank down with it, so no rank waits forever in a collective.
    eat::abort_job(e.what());
  }
  eat::finalize_job();
  return 0;
}
