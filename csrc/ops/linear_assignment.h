#pragma once
// Host side of fastloss::linear_sum_assignment (math: math/linear_assignment.h), shared by
// cpu/linear_assignment.cpp and cuda/linear_assignment.cu: argument checks, the problems' layout,
// the workspace and the entry point.
//
// cost (..., Q, T): one problem per leading index, its unpadded block the first num_targets[...]
// columns (all T without num_targets). Outputs per problem: row_ind and col_ind (min(Q, T) each,
// int64; −1 past the problem's min(Q, t) pairs, −2 throughout where it has no solution) and status (int32:
// math/linear_assignment.h's Status, or kBadCount for a count outside [0, T]).
#include <algorithm>
#include <optional>
#include <tuple>
#include "math/linear_assignment.h"
#include "ops/tensor_args.h"

namespace fastloss::linear_assignment {

constexpr const char* kOp = "fastloss::linear_sum_assignment";
constexpr int32_t kBadCount = 3;

template <typename scalar_t>
struct Args {
  const scalar_t* cost;                 // (P, Q, T)
  const int64_t* counts;                // (P) or nullptr: every column
  int64_t problems, rows, cols, width;  // width = min(Q, T)
  bool maximize;
  // the workspace of problem p: kWorkspaceDoubles·n doubles, kWorkspaceInts·n int64s, kWorkspaceFlags·n
  // bools (n = max(Q, T))
  double* doubles;
  int64_t* ints;
  bool* flags;
  int64_t* row_ind;  // (P, width)
  int64_t* col_ind;
  int32_t* status;  // (P)

  FASTLOSS_HD Workspace workspace(int64_t p) const {
    const int64_t n = rows > cols ? rows : cols;
    double* d = doubles + p * kWorkspaceDoubles * n;
    int64_t* i = ints + p * kWorkspaceInts * n;
    bool* f = flags + p * kWorkspaceFlags * n;
    return {d, d + n, d + 2 * n, i, i + n, i + 2 * n, i + 3 * n, f, f + n};
  }

  // Problem p, whole: its block, its pairs and its status.
  FASTLOSS_HD void solve_problem(int64_t p, const Workspace& w) const {
    const int64_t t = counts != nullptr ? counts[p] : cols;
    if (t < 0 || t > cols) {
      for (int64_t k = 0; k < width; ++k) row_ind[p * width + k] = -2, col_ind[p * width + k] = -2;
      status[p] = kBadCount;
      return;
    }
    const Status s =
        assign(cost + p * rows * cols, cols, rows, t, maximize, w, width, row_ind + p * width, col_ind + p * width);
    status[p] = s;
    if (s != kSolved)  // (−2 marks a problem without a solution, for callers that read the pairs only)
      for (int64_t k = 0; k < width; ++k) row_ind[p * width + k] = -2, col_ind[p * width + k] = -2;
  }
};

struct Outputs {
  Tensor row_ind, col_ind, status;
};

// Entry point (solve_all): Kernels::solve<scalar_t>(const Args<scalar_t>&, const Tensor& like) fills the outputs
// (like: where the workspace goes, when the kernels allocate it on their device).
template <typename Kernels>
std::tuple<Tensor, Tensor, Tensor> solve_all(const Tensor& cost, const std::optional<Tensor>& num_targets,
                                             bool maximize) {
  FASTLOSS_CHECK(is_floating(cost.scalar_type()), kOp, ": cost must be floating point, got ", cost.scalar_type());
  FASTLOSS_CHECK(cost.dim() >= 2, kOp, ": cost must be (..., Q, T), got ", cost.sizes());
  const Tensor c = as_contiguous(cost);
  const int64_t rows = cost.size(-2), cols = cost.size(-1), width = std::min(rows, cols);
  const Shape batch(cost.sizes().begin(), cost.sizes().end() - 2);
  int64_t problems = 1;
  for (int64_t s : batch) problems *= s;
  Tensor counts;
  if (num_targets.has_value() && num_targets->defined()) {
    check_same_device(kOp, cost, *num_targets, "num_targets");
    FASTLOSS_CHECK(num_targets->scalar_type() == kLong && sizes(*num_targets) == batch, kOp,
                   ": num_targets must be int64 of the cost's leading shape ", batch, ", got ",
                   num_targets->scalar_type(), " ", num_targets->sizes());
    counts = as_contiguous(*num_targets);
  }
  Shape pairs = batch;
  pairs.push_back(width);
  const auto opts = options(c);
  Tensor row_ind = empty(pairs, opts.with(kLong)), col_ind = empty(pairs, opts.with(kLong));
  Tensor status = empty(batch, opts.with(ScalarType::Int));
  if (problems == 0) return {row_ind, col_ind, status};
  dispatch_floating(c.scalar_type(), [&](auto type) {
    using scalar_t = typename decltype(type)::type;
    Args<scalar_t> a{c.const_data_ptr<scalar_t>(),
                     counts.defined() ? counts.const_data_ptr<int64_t>() : nullptr,
                     problems,
                     rows,
                     cols,
                     width,
                     maximize,
                     nullptr,
                     nullptr,
                     nullptr,
                     row_ind.mutable_data_ptr<int64_t>(),
                     col_ind.mutable_data_ptr<int64_t>(),
                     status.mutable_data_ptr<int32_t>()};
    Kernels::template solve<scalar_t>(a, c);
  });
  return {row_ind, col_ind, status};
}

}  // namespace fastloss::linear_assignment
