#pragma once
// Eigen array views of a run of values, for pointwise kernels written as array expressions: Eigen
// vectorises them (exp included, which a plain loop over std::exp never is) whatever the pointers'
// aliasing, where a hand loop with per-element branches or possibly aliased outputs stays scalar.
#include <Eigen/Core>

namespace eat::cpu {

template <typename T>
using ArrayMap = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <typename T>
using ConstArrayMap = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

}  // namespace eat::cpu
