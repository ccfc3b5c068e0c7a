// MoH's router on the CPU: rows over OpenMP threads (static schedule, each row written by one
// thread), the row's arithmetic in double (kernels/moh_gates_row.h).
#include "kernels/moh_gates.h"

#include <cmath>

#include "kernels/cpu/parallel.h"
#include "kernels/moh_gates_row.h"

namespace eat::cpu {

namespace {

template <typename T>
struct HostNum {
  using A = double;
  static A load(T x) { return static_cast<A>(x); }
  static T store(A x) { return static_cast<T>(x); }
  static A exp(A x) { return std::exp(x); }
};

template <typename T> using Row = moh::GateRow<HostNum<T>, T>;

// Work per row, for parallel_worth: the selection compares every pair of routed logits.
int64_t work(const MohGatesShape& s) { return s.N * (s.h_s + s.R * s.R); }

}  // namespace

template <typename T>
void moh_gates_forward(const MohGatesShape& s, const T* shared_logits, const T* routed_logits, const T* mix_logits,
                       T* gates, T* routed_probs, T* selected) {
#pragma omp parallel for schedule(static) if(parallel_worth(work(s)))
  for (int64_t n = 0; n < s.N; ++n)
    Row<T>(s, n, routed_logits, mix_logits).forward(shared_logits, gates, routed_probs, selected);
}

template <typename T>
void moh_gates_backward(const MohGatesShape& s, const T* shared_logits, const T* routed_logits, const T* mix_logits,
                        const T* dgates, const T* drouted_probs, T* dshared_logits, T* drouted_logits, T* dmix_logits) {
#pragma omp parallel for schedule(static) if(parallel_worth(work(s)))
  for (int64_t n = 0; n < s.N; ++n)
    Row<T>(s, n, routed_logits, mix_logits)
        .backward(shared_logits, dgates, drouted_probs, dshared_logits, drouted_logits, dmix_logits);
}

#define EAT_INSTANTIATE(T)                                                                                       \
  template void moh_gates_forward<T>(const MohGatesShape&, const T*, const T*, const T*, T*, T*, T*);         \
  template void moh_gates_backward<T>(const MohGatesShape&, const T*, const T*, const T*, const T*, const T*, T*, \
                                      T*, T*);
EAT_INSTANTIATE(float)
EAT_INSTANTIATE(double)

}  // namespace eat::cpu
