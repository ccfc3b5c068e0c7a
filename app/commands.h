#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace eat::cli {

std::string build_features();  // "cpu+cuda, mpi, 2 threads"
void add_bench_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_data_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_bench_lightning_command(CLI::App& bench);  // under `eat bench`
void add_bench_lightning_cuda_command(CLI::App& bench);
void add_bench_based_command(CLI::App& bench);
void add_bench_rat_command(CLI::App& bench);
void add_bench_moh_command(CLI::App& bench);
void add_bench_titans_command(CLI::App& bench);
void add_bench_train_command(CLI::App& bench);
// A length-sweep benchmark under `eat bench`: --quick, --threads and --rounds (rounds_help says its
// default), then run(quick, rounds), rounds 0 when not given.
void add_sweep_bench(CLI::App& bench, const std::string& name, const std::string& help, const std::string& rounds_help,
                     std::function<void(bool quick, int rounds)> run);

}  // namespace eat::cli
