// Op table rows: Taylor linear attention (BASED), each form's output, the unnormalised variant,
// the output and final state after a prefix state, the state sum alone, and the sequence-parallel
// split (the sums of a zero-start pass, and with the readout of a prefix state). The prefix state is built inside the call
// from prefix keys and values (the final state of a run over them), so its normaliser column is
// what real use sees and its gradient reaches those inputs. References are another form in f64;
// tests/kernels/test_taylor_attention.cpp checks every form against a loop-by-loop definition.
#include "framework/flops.h"
#include "framework/op_cases/op_case.h"
#include "framework/ops.h"

namespace eat::op_cases {

namespace {

// q, k [B, T, H, f], v [B, T, H, e]; with a prefix, P more keys [B, P, H, f] and values [B, P, H, e].
Sizes qkv(int64_t B, int64_t T, int64_t H, int64_t f, int64_t e, int64_t P = 0) {
  Sizes s{normal({B, T, H, f}, 0.7), normal({B, T, H, f}, 0.7), normal({B, T, H, e})};
  if (P > 0) {
    s.push_back(normal({B, P, H, f}, 0.7));
    s.push_back(normal({B, P, H, e}));
  }
  return s;
}

// The op on q, k, v, after the state of the prefix keys and values when there are any.
std::pair<Tensor, Tensor> taylor(const std::vector<Tensor>& in, const TaylorOptions& options) {
  Tensor prefix;
  if (in.size() > 3) prefix = taylor_attention(in[3], in[3], in[4], Tensor(), options).second;
  return taylor_attention(in[0], in[1], in[2], prefix, options);
}

// One form's output (or final state) against another form's.
OpCase taylor_row(std::string name, TaylorImpl impl, TaylorImpl reference, bool normalize, int64_t prefix,
                  bool final_state) {
  OpCase row;
  row.name = std::move(name);
  // One token; one head with f != e; a ragged second block; BASED's f = 16.
  // (The final state sums every token: at T = 70 the loss's rounding over the finite-difference
  // step alone reaches the gradient check's tolerance, so that row stops at T = 20.)
  row.small = {qkv(1, 1, 1, 2, 3, prefix), qkv(2, 5, 2, 3, 2, prefix), qkv(1, final_state ? 20 : 70, 1, 2, 3, prefix)};
  row.medium = {qkv(2, 130, 3, 16, 8, prefix), qkv(2, 77, 2, 16, 64, prefix), qkv(1, 33, 4, 4, 24, prefix)};
  row.tol.reference = 1e-13;  // two forms' different summation orders over quadratic scores (2e-15 seen)
  row.tol.f32 = 2e-6;         // f32 rounding of sums of up to 130 quadratic scores (3e-7 seen)
  // The state is f32 on CUDA whatever the inputs; the row's result is compared in the inputs' dtype.
  row.call = [=](auto& in) {
    auto out = taylor(in, {.impl = impl, .normalize = normalize});
    return final_state ? cast(out.second, in[0].dtype()) : out.first;
  };
  row.reference = [=](auto& in) {
    auto out = taylor(in, {.impl = reference, .normalize = normalize});
    return final_state ? out.second : out.first;
  };
  row.cuda = impl == TaylorImpl::chunked;  // the CUDA kernel is the chunked form's
  return row;
}

// The state sum against the final state of the parallel form (q = k: any q gives the same state).
OpCase state_sum_row() {
  OpCase row;
  row.name = "taylor_state_sum";
  row.small = {{normal({1, 1, 1, 2}, 0.7), normal({1, 1, 1, 3})},
               {normal({2, 5, 2, 3}, 0.7), normal({2, 5, 2, 2})},
               {normal({1, 20, 1, 2}, 0.7), normal({1, 20, 1, 3})}};
  row.medium = {{normal({2, 130, 3, 16}, 0.7), normal({2, 130, 3, 8})},
                {normal({1, 33, 4, 4}, 0.7), normal({1, 33, 4, 24})}};
  row.bench = {{normal({1, 4096, 8, 16}, 0.7), normal({1, 4096, 8, 64})}};
  row.tol.reference = 1e-13;  // one product against the parallel form's tiles: summation order only
  row.tol.f32 = 2e-6;         // f32 sums of up to 130 feature products (as the final-state row)
  // The state is f32 on CUDA whatever the inputs; the row's result is compared in the inputs' dtype.
  row.call = [](auto& in) { return cast(taylor_state_sum(in[0], in[1]), in[0].dtype()); };
  row.reference = [](auto& in) {
    return taylor_attention(in[0], in[0], in[1], Tensor(), {.impl = TaylorImpl::parallel}).second;
  };
  // The k^T v state sum with D' feature rows and e + 1 value columns (the feature map itself is
  // O(T D') next to it).
  row.flops = [](const std::vector<Shape>& s) {
    return flops::state_sum(s[0][0], s[0][1], s[0][2], taylor_state_rows(s[0][3]), s[1][3] + 1,
                            flops::Pass::forward_backward);
  };
  row.cuda = true;
  return row;
}

// The attention split at its incoming state, as sequence parallelism runs it: the readout of the
// prefix state added to the sums of a zero-start pass, against the whole attention from that
// state (both ops' gradients reach q, k, v and the prefix keys and values).
// The default blocks, as taylor_attention's rows (tests/kernels/test_taylor_split.cpp takes others).
OpCase split_row(std::string name, bool normalize) {
  OpCase row = taylor_row(std::move(name), TaylorImpl::chunked, TaylorImpl::parallel, normalize, 6, false);
  if (!normalize) row.small.back() = qkv(1, 20, 1, 2, 3, 6);  // unnormalised outputs grow as the final state
  row.call = [=](auto& in) {
    const TaylorOptions o{.normalize = normalize};
    const Tensor prefix = taylor_attention(in[3], in[3], in[4], Tensor(), o).second;
    return taylor_state_readout(in[0], prefix, taylor_attention_sums(in[0], in[1], in[2], o), o);
  };
  return row;
}

// [x | c] for x [B, T, H, e] and c [B, T, H, 1] (f64, no gradient): a reference's two outputs side by side.
Tensor join_last(const Tensor& x, const Tensor& c) {
  const std::vector<double> xv = x.to_f64_vector(), cv = c.to_f64_vector();
  const int64_t rows = c.numel(), e = x.size(3);
  std::vector<double> out;
  for (int64_t i = 0; i < rows; ++i) {
    out.insert(out.end(), xv.begin() + i * e, xv.begin() + (i + 1) * e);
    out.push_back(cv[static_cast<size_t>(i)]);
  }
  return Tensor::from_vector<double>(out, {x.size(0), x.size(1), x.size(2), e + 1});
}

// The sums of a zero-start pass, [N | Z], against the parallel form's unnormalised outputs for v
// and for values of one (whose output is Z). Unnormalised sums grow with T as the final state does,
// so the small cases stop at T = 20 as its row's; in blocks of 16, several of them.
OpCase sums_row() {
  OpCase row = taylor_row("taylor_attention_sums", TaylorImpl::chunked, TaylorImpl::parallel, false, 0, false);
  row.small.back() = qkv(1, 20, 1, 2, 3);
  // The sums are f32 on CUDA whatever the inputs; the row's result is compared in the inputs' dtype.
  row.call = [](auto& in) { return cast(taylor_attention_sums(in[0], in[1], in[2], {.block = 16}), in[0].dtype()); };
  row.reference = [](auto& in) {
    const TaylorOptions o{.impl = TaylorImpl::parallel, .normalize = false};
    Shape ones = in[2].shape();
    ones[3] = 1;
    return join_last(taylor_attention(in[0], in[1], in[2], Tensor(), o).first,
                     taylor_attention(in[0], in[1], Tensor::full(ones, 1.0, DType::f64), Tensor(), o).first);
  };
  return row;
}

}  // namespace

std::vector<OpCase> taylor_cases() {
  using I = TaylorImpl;
  OpCase chunked = taylor_row("taylor_attention", I::chunked, I::parallel, true, 0, false);
  for (int64_t T : {1024, 4096, 16384}) chunked.bench.push_back(qkv(1, T, 8, 16, 64));
  chunked.flops = [](const std::vector<Shape>& s) {
    return flops::taylor_chunked(s[0][0], s[0][1], s[0][2], s[0][3], s[2][3], TaylorOptions{}.block,
                                 flops::Pass::forward_backward);
  };
  OpCase parallel = taylor_row("taylor_attention parallel", I::parallel, I::recurrent, true, 0, false);
  for (int64_t T : {1024, 4096}) parallel.bench.push_back(qkv(1, T, 8, 16, 64));
  parallel.flops = [](const std::vector<Shape>& s) {
    return flops::taylor_parallel(s[0][0], s[0][1], s[0][2], s[0][3], s[2][3], flops::Pass::forward_backward);
  };
  OpCase with_state = taylor_row("taylor_attention initial state", I::chunked, I::parallel, true, 6, false);
  OpCase split = split_row("taylor_attention sums + readout", true);
  // The same call both ways at BASED's widths: what the split of sequence parallelism costs.
  for (OpCase* row : {&with_state, &split}) row->bench.push_back(qkv(1, 4096, 8, 16, 64, 64));
  return {std::move(chunked), std::move(parallel),
          taylor_row("taylor_attention recurrent", I::recurrent, I::parallel, true, 0, false),
          taylor_row("taylor_attention unnormalized", I::chunked, I::parallel, false, 0, false), std::move(with_state),
          taylor_row("taylor_attention final state", I::chunked, I::parallel, true, 6, true), state_sum_row(),
          sums_row(), std::move(split), split_row("taylor_attention sums + readout unnormalized", false)};
}

}  // namespace eat::op_cases
