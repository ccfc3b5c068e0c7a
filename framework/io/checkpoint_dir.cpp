#include "framework/io/checkpoint_dir.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>

#include "base/error.h"
#include "framework/io/safetensors.h"

namespace eat {

namespace fs = std::filesystem;

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

std::vector<CheckpointRef> list_checkpoints(const std::string& run_dir) {
  std::vector<CheckpointRef> out;
  fs::path dir = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  static const std::regex pattern("step_([0-9]{8,})");
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::smatch m;
    std::string name = entry.path().filename().string();
    if (!entry.is_directory() || !std::regex_match(name, m, pattern)) continue;
    if (!fs::exists(entry.path() / "state.json")) continue;  // state.json is written last
    out.push_back({std::stoll(m[1].str()), entry.path().string()});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return out;
}

std::string resolve_checkpoint(const std::string& path) {
  if (fs::exists(fs::path(path) / "state.json")) return path;
  auto all = list_checkpoints(path);
  EAT_CHECK(!all.empty(), path, ": neither a checkpoint directory nor a run directory with checkpoints");
  return all.back().path;
}

std::string write_checkpoint(const std::string& run_dir, int64_t step, int64_t keep_last,
                             const std::function<void(const std::string& dir)>& write_files) {
  fs::path dir = fs::path(run_dir) / "checkpoints";
  fs::create_directories(dir);
  fs::path final_path = dir / checkpoint_name(step);
  fs::path tmp = dir / (".tmp-" + checkpoint_name(step) + "-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  write_files(tmp.string());
  fsync_directory(tmp.string());
  if (fs::exists(final_path)) {
    // Saving the same step again (e.g. after a resume): move the old copy aside first, so at
    // every moment one complete copy exists.
    fs::path old = dir / (".old-" + checkpoint_name(step) + "-" + std::to_string(::getpid()));
    fs::remove_all(old);
    fs::rename(final_path, old);
    fs::rename(tmp, final_path);
    fs::remove_all(old);
  } else {
    fs::rename(tmp, final_path);
  }
  fsync_directory(dir.string());

  std::vector<CheckpointRef> all = list_checkpoints(run_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep_last) < all.size(); ++i) fs::remove_all(all[i].path);
  // Leftovers of interrupted saves by earlier processes.
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if ((name.rfind(".tmp-", 0) == 0 || name.rfind(".old-", 0) == 0) && entry.path() != tmp) fs::remove_all(entry.path());
  }
  return final_path.string();
}

}  // namespace eat
