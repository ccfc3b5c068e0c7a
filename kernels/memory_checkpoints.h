#pragma once
// Where Titans' chunked memory ops (linear and MLP memory) keep states for their backward: the
// forward stores the state at every `every`-th chunk boundary and the backward recomputes the
// chunk-start states between two of them (titans.md 3.3), so saved memory is about
// 2 sqrt(T / chunk) states instead of T / chunk.
#include <cstdint>

namespace eat {

// The element type of states, checkpoints and state gradients: the storage type on the CPU (f32
// or f64), f32 on CUDA whatever the storage (bf16 included).
namespace cpu {
template <typename T>
using MemoryState = T;
}
namespace cuda {
template <typename T>
using MemoryState = float;
}

// The number of chunks of `chunk` tokens covering T (the last may be shorter).
inline int64_t memory_chunks(int64_t T, int64_t chunk) { return (T + chunk - 1) / chunk; }

// checkpoint_chunks as the op takes it resolved to >= 1; 0 gives ceil(sqrt(chunks)), which
// balances the kept states against the states recomputed between two of them.
inline int64_t memory_checkpoint_every(int64_t T, int64_t chunk, int64_t checkpoint_chunks) {
  if (checkpoint_chunks > 0) return checkpoint_chunks;
  const int64_t chunks = memory_chunks(T, chunk);
  int64_t r = 1;
  while (r * r < chunks) ++r;
  return r;
}

// Chunk boundaries whose state the forward keeps: 0, every, 2 every, .. below the number of
// chunks (at least the initial state, also for T = 0).
inline int64_t memory_checkpoints(int64_t T, int64_t chunk, int64_t every) {
  const int64_t chunks = memory_chunks(T, chunk);
  return chunks == 0 ? 1 : (chunks + every - 1) / every;
}

}  // namespace eat
