#pragma once
// Host memory for tensors. Large blocks are kept for reuse after they are freed: a training step
// allocates the same big activations and gradients every time, and handing them back to the
// operating system would make every step pay for page faults on fresh memory again (at 64K
// tokens that is a third of the attention time).
#include <cstddef>

namespace eat {

void* host_alloc(size_t nbytes);             // 64-byte aligned
void host_free(void* ptr, size_t nbytes);    // nbytes as given to host_alloc

}  // namespace eat
