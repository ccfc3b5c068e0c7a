#pragma once
// Checkpoint directories under RUN_DIR/checkpoints/: step_XXXXXXXX/ for complete ones. A new one
// is written into a hidden temporary directory, every file fsynced, then renamed into place, so
// an interrupted save never leaves a directory that looks complete and never touches the last
// good one. Old ones are pruned only after the new one is in place.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace eat {

struct CheckpointRef {
  int64_t step;
  std::string path;
};

std::string checkpoint_name(int64_t step);  // "step_00000042"

// Complete checkpoints (a step_XXXXXXXX directory holding state.json), oldest first. Temporary
// and half-written directories are ignored.
std::vector<CheckpointRef> list_checkpoints(const std::string& run_dir);

// A checkpoint directory as given, or a run directory's newest complete checkpoint; an error
// naming the path when it is neither.
std::string resolve_checkpoint(const std::string& path);

// Writes RUN_DIR/checkpoints/step_XXXXXXXX atomically: write_files fills a temporary directory
// (it must fsync what it writes; write_file_synced does), which is then renamed. Keeps the
// newest keep_last complete checkpoints. Returns the final path.
std::string write_checkpoint(const std::string& run_dir, int64_t step, int64_t keep_last,
                             const std::function<void(const std::string& dir)>& write_files);

}  // namespace eat
