#pragma once
// What a run tells: its header lines, each step's metrics.jsonl line (the leader's) and, every
// log.every steps and at the last, the console line averaged over the steps since the previous one.
#include <nlohmann/json.hpp>

#include "framework/train/step.h"
#include "framework/train/training_run.h"

namespace eat {

// Model, batch layout, threads, device, peak and run directory (console, the leader unless quiet).
void print_run_header(const TrainingRun& run);

// The step's metrics line: step, loss, lr, grad_norm, tokens_per_s, mfu, step_seconds; aux_<name>
// and aux_loss when the model has aux terms; comm_share and comm_bytes with several ranks; the
// device's peak memory on a GPU.
nlohmann::json step_metrics_line(const TrainingRun& run, const StepNumbers& step);

// Records the step's metrics line, reports the first step's communication and device memory, and
// prints the console line when it is due.
void log_step(TrainingRun& run, const StepNumbers& step);

// The device memory at the end of a GPU run.
void print_run_footer(const TrainingRun& run);

}  // namespace eat
