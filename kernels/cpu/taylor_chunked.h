#pragma once
// Taylor linear attention's chunked form on the CPU with an explicit schedule
// (kernels/cpu/chunk_schedule.h: per_head sweeps, or per_block tasks over the states entering
// every block); both give bit-identical results. taylor_chunked_forward / _backward
// (kernels/taylor_attention.h) run the automatic schedule.
#include "kernels/cpu/chunk_schedule.h"
#include "kernels/taylor_attention.h"

namespace eat::cpu {

template <typename T>
void taylor_chunked_forward_scheduled(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k,
                                      const T* v, const T* s0, T* y, T* final_state, RowStat* denominator,
                                      ChunkedSchedule schedule);
template <typename T>
void taylor_chunked_backward_scheduled(const HeadShape& s, const TaylorKernelArgs& a, const T* q, const T* k,
                                       const T* v, const T* s0, const T* y, const RowStat* denominator, const T* dy,
                                       const T* dfinal, T* dq, T* dk, T* dv, T* ds0, ChunkedSchedule schedule);

}  // namespace eat::cpu
