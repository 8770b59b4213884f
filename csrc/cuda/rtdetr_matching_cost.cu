// CUDA kernels of fastloss::rtdetr_matching_cost over math/matching_cost.h (rtdetr; the formulas
// the CPU tests prove): each target's box values once, then one (layer, image, query, target) cost
// per thread in a grid-stride loop — every decoder layer in the same launch.
#include "cuda/launch.cuh"
#include "ops/rtdetr_matching_cost.h"

namespace fastloss::matching_cost::rtdetr {
namespace {

template <typename S>
__global__ void target_values_kernel(const S* boxes, int64_t columns, S* values) {
  cuda::for_each_element(columns, 1,
                         [&](int64_t i, int64_t, int64_t) { write_target_values(boxes, i, columns, values); });
}

template <typename S>
__global__ void cost_kernel(Args<S> a, S* cost) {
  const int64_t columns = a.batch * a.targets;
  cuda::for_each_element(a.rows * a.targets, a.targets, [&](int64_t i, int64_t r, int64_t j) {
    S q[kValues], t[kValues];
    a.query_values(r, q);
    for (int k = 0; k < kValues; ++k) t[k] = a.target_values[k * columns + a.image(r) * a.targets + j];
    cost[i] = pair_cost(a.gains, a.class_cost[i], q, t);
  });
}

struct CudaKernels {
  template <typename S>
  static void target_values(const Tensor& tgt_boxes, Tensor& values) {
    const cuda::DeviceGuard guard(values);
    const int64_t columns = values.size(1);
    cuda::launch_over(columns, target_values_kernel<S>, tgt_boxes.const_data_ptr<S>(), columns,
                      values.mutable_data_ptr<S>());
  }

  template <typename S>
  static void costs(const Args<S>& a, Tensor& out) {
    const cuda::DeviceGuard guard(out);
    cuda::launch_over(out.numel(), cost_kernel<S>, a, out.mutable_data_ptr<S>());
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) { m.impl("rtdetr_matching_cost", TORCH_BOX(&costs<CudaKernels>)); }

}  // namespace fastloss::matching_cost::rtdetr
