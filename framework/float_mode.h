#pragma once
// How the CPU treats subnormal (denormal) floats: flushed to zero, in results (FTZ) and as inputs
// (DAZ). A decaying state (a memory's momentum, a gate product, an adjoint carried back through
// many chunks) drifts into the subnormal range, where every multiply-add traps into microcode: a
// Titans memory op ran about 7 times slower once its state got there. Values below 1.2e-38 (f32)
// or 2.2e-308 (f64) then read as 0, the same way at any thread count.
namespace eat {

// Sets the mode for the calling thread and every OpenMP thread (started now, so later parallel
// regions reuse threads that have it; threads started later copy it from their creator). Call it
// first thing in main, before any parallel region. A no-op where the CPU has no such mode.
void flush_denormals_to_zero();

}  // namespace eat
