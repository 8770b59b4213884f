// CUDA kernel of fastloss::linear_sum_assignment: one warp per problem, every problem of the batch
// (all layers and images) in one launch, each with its slice of one workspace. The lanes share each
// scan of the path search (column it to lane it mod the warp's width) and each dual update; the
// column taken is reduced across the lanes by math/linear_assignment.h's `precedes`, a total order
// whose least element is what scipy's sequential scan takes, so the pairs are the CPU's (and scipy's).
// The list and path updates, sequential by nature, are lane 0's. Infeasible problems are a status per
// problem, read by the caller when it wants: no host sync.
#include "cuda/launch.cuh"
#include "cuda/warp.cuh"
#include "ops/linear_assignment.h"

namespace fastloss::linear_assignment {
namespace {

constexpr int kWarpsPerBlock = cuda::kThreads / cuda::kWarpSize;

__device__ __forceinline__ Candidate warp_first(Candidate c) {
  for (int offset = cuda::kWarpSize / 2; offset > 0; offset >>= 1) {
    const Candidate other{__shfl_xor_sync(cuda::kAllLanes, c.value, offset),
                          __shfl_xor_sync(cuda::kAllLanes, c.index, offset),
                          __shfl_xor_sync(cuda::kAllLanes, static_cast<int>(c.free), offset) != 0};
    if (precedes(other, c)) c = other;
  }
  return c;
}

// math/linear_assignment.h's solve, the warp's lanes together; every lane returns the same status.
template <typename Cost>
__device__ Status warp_solve(const Cost& cost, int64_t nr, int64_t nc, const Workspace& w) {
  const int lane = cuda::lane_id();
  constexpr int kLanes = cuda::kWarpSize;
  for (int64_t r = lane; r < nr; r += kLanes) w.u[r] = 0, w.col4row[r] = -1;
  for (int64_t c = lane; c < nc; c += kLanes) w.v[c] = 0, w.path[c] = -1, w.row4col[c] = -1;
  __syncwarp();
  for (int64_t row = 0; row < nr; ++row) {
    for (int64_t it = lane; it < nc; it += kLanes) {
      w.remaining[it] = nc - it - 1;  // (reverse order: the tie rule's order)
      w.col_in_tree[it] = false;
      w.shortest[it] = INFINITY;
    }
    for (int64_t r = lane; r < nr; r += kLanes) w.row_in_tree[r] = false;
    __syncwarp();
    double min_value = 0;
    int64_t num_remaining = nc, sink = -1, i = row;
    while (sink == -1) {
      const double u_i = w.u[i];
      Candidate first{INFINITY, -1, false};
      for (int64_t it = lane; it < num_remaining; it += kLanes) {
        const int64_t j = w.remaining[it];
        const Candidate c{relax(cost, w, i, j, min_value, u_i), it, w.row4col[j] == -1};
        if (precedes(c, first)) first = c;
      }
      first = warp_first(first);
      min_value = first.value;
      if (min_value == INFINITY) return kInfeasible;
      const int64_t j = w.remaining[first.index];
      const int64_t next_row = w.row4col[j];
      __syncwarp();  // (every lane has read the list before lane 0 changes it)
      if (lane == 0) {
        w.row_in_tree[i] = true;
        w.col_in_tree[j] = true;
        w.remaining[first.index] = w.remaining[num_remaining - 1];
      }
      --num_remaining;
      if (first.free) {
        sink = j;
      } else {
        i = next_row;
      }
      __syncwarp();
    }
    if (lane == 0) w.u[row] += min_value;
    for (int64_t r = lane; r < nr; r += kLanes) update_row_dual(w, r, row, min_value);
    for (int64_t c = lane; c < nc; c += kLanes) update_column_dual(w, c, min_value);
    __syncwarp();
    if (lane == 0) augment(w, sink, row);
    __syncwarp();
  }
  return kSolved;
}

// Args::solve_problem (ops/linear_assignment.h), the warp's lanes together.
template <typename scalar_t>
__device__ void warp_solve_problem(const Args<scalar_t>& a, int64_t p) {
  const int lane = cuda::lane_id();
  const int64_t t = a.counts != nullptr ? a.counts[p] : a.cols;
  int64_t* row_ind = a.row_ind + p * a.width;
  int64_t* col_ind = a.col_ind + p * a.width;
  const auto fill = [&](int64_t value) {
    for (int64_t k = lane; k < a.width; k += cuda::kWarpSize) row_ind[k] = value, col_ind[k] = value;
  };
  Status status = kSolved;
  if (t < 0 || t > a.cols) {
    fill(-2);
    if (lane == 0) a.status[p] = kBadCount;
    return;
  }
  fill(-1);
  if (a.rows > 0 && t > 0) {
    const Problem<scalar_t> problem(a.cost + p * a.rows * a.cols, a.cols, a.rows, t, a.maximize);
    bool valid = true;
    for (int64_t k = lane; k < problem.nr * problem.nc; k += cuda::kWarpSize)
      valid &= valid_entry(problem.cost(k / problem.nc, k % problem.nc));
    const Workspace w = a.workspace(p);
    status = __all_sync(cuda::kAllLanes, valid) ? warp_solve(problem.cost, problem.nr, problem.nc, w) : kInvalid;
    __syncwarp();
    if (status == kSolved && lane == 0) problem.write_pairs(w, row_ind, col_ind);
  }
  if (status != kSolved) fill(-2);  // (−2 marks a problem without a solution)
  if (lane == 0) a.status[p] = status;
}

template <typename scalar_t>
__global__ void solve_kernel(Args<scalar_t> a) {
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + cuda::warp_id(); p < a.problems; p += warps)
    warp_solve_problem(a, p);
}

struct CudaKernels {
  template <typename scalar_t>
  static void solve(Args<scalar_t> a, const Tensor& like) {
    const cuda::DeviceGuard guard(like);
    const int64_t n = std::max(a.rows, a.cols);
    Tensor doubles = empty({a.problems * kWorkspaceDoubles * n}, options(like).with(kDouble));
    Tensor ints = empty({a.problems * kWorkspaceInts * n}, options(like).with(kLong));
    Tensor flags = empty({a.problems * kWorkspaceFlags * n}, options(like).with(ScalarType::Bool));
    a.doubles = doubles.mutable_data_ptr<double>();
    a.ints = ints.mutable_data_ptr<int64_t>();
    a.flags = flags.mutable_data_ptr<bool>();
    const int64_t blocks = std::min<int64_t>((a.problems + kWarpsPerBlock - 1) / kWarpsPerBlock, 65535);
    cuda::launch(dim3(static_cast<unsigned>(blocks)), solve_kernel<scalar_t>, a);
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) { m.impl("linear_sum_assignment", TORCH_BOX(&solve_all<CudaKernels>)); }

}  // namespace fastloss::linear_assignment
