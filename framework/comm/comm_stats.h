#pragma once
// What this process hands to its communicators and how long it waits inside them, attributed to
// the label in scope (e.g. "layers.2.attn"), so a run can report the traffic of every layer and
// the share of a step spent communicating. Bytes are the payload this rank contributes to each
// operation (its buffer for all_gather / all_reduce / reduce_scatter, the root's buffer for
// broadcast, what it sends for send / send_recv), not the wire traffic of the algorithm MPI or
// NCCL picks. Collectives are issued from one thread, so the counters are plain globals.
#include <cstdint>
#include <map>
#include <string>

namespace eat {

struct CommCount {
  int64_t bytes = 0;   // payload sent by this rank
  int64_t calls = 0;   // operations issued
  double seconds = 0;  // wall time inside them (issue + wait)
};

// Sets the label for the operations issued while it lives; the previous one comes back after.
class CommLabel {
 public:
  explicit CommLabel(std::string label);
  ~CommLabel();
  CommLabel(const CommLabel&) = delete;
  CommLabel& operator=(const CommLabel&) = delete;

 private:
  std::string previous_;
};

// The label in scope; "other" when none was set. Autograd nodes capture it at record time so
// that a layer's backward collectives are booked to the layer.
const std::string& current_comm_label();

std::map<std::string, CommCount> comm_counts();
CommCount comm_total();  // over all labels
void reset_comm_counts();

// Books one operation to the current label: the bytes at once, the time when it goes out of
// scope. Backends wrap every operation (and every wait) in one.
class CommTimer {
 public:
  explicit CommTimer(int64_t bytes_sent, bool new_call = true);
  ~CommTimer();
  CommTimer(const CommTimer&) = delete;
  CommTimer& operator=(const CommTimer&) = delete;

 private:
  std::string label_;
  double start_;
  bool new_call_;
};

}  // namespace eat
