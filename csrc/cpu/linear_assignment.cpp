// CPU kernel of fastloss::linear_sum_assignment: one problem per task, each with its own workspace and
// its costs copied dense in float64, as scipy does (math/linear_assignment.h solves it as scipy does).
#include <memory>
#include <vector>
#include "ops/linear_assignment.h"

namespace fastloss::linear_assignment {
namespace {

struct CpuKernels {
  template <typename scalar_t>
  static void solve(Args<scalar_t> a, const Tensor&) {
    const int64_t n = std::max(a.rows, a.cols);
    torch::stable::parallel_for(0, a.problems, 1, [&](int64_t begin, int64_t end) {
      std::vector<double> doubles(kWorkspaceDoubles * n);
      std::vector<int64_t> ints(kWorkspaceInts * n);
      std::unique_ptr<bool[]> flags(new bool[kWorkspaceFlags * n]);
      std::vector<double> dense(a.rows * a.cols);
      Args<scalar_t> mine = a;
      mine.doubles = doubles.data(), mine.ints = ints.data(), mine.flags = flags.get();
      Workspace w = mine.workspace(0);
      w.dense = dense.data();
      for (int64_t p = begin; p < end; ++p) mine.solve_problem(p, w);
    });
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, m) { m.impl("linear_sum_assignment", TORCH_BOX(&solve_all<CpuKernels>)); }

}  // namespace fastloss::linear_assignment
