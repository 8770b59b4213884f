// CUDA kernels of fastloss::matching_cost over math/matching_cost.h (the formulas the CPU tests
// prove): each target's box values once (and each query's softmax statistics), then one (layer,
// image, query, target) cost per thread in a grid-stride loop — all decoder layers in the same launch.
#include "cuda/launch.cuh"
#include "ops/matching_cost.h"

namespace fastloss::matching_cost {
namespace {

template <typename scalar_t, typename S>
__global__ void softmax_stats_kernel(const scalar_t* logits, int64_t rows, int64_t classes, S* stats) {
  cuda::for_each_element(rows, 1, [&](int64_t r, int64_t, int64_t) {
    softmax_stats(logits + r * classes, classes, stats[r], stats[rows + r]);
  });
}

template <typename S>
__global__ void target_values_kernel(const S* boxes, int64_t columns, S* values) {
  cuda::for_each_element(columns, 1, [&](int64_t i, int64_t, int64_t) { write_box_values(boxes, i, columns, values); });
}

template <typename scalar_t, typename S>
__global__ void cost_kernel(Args<scalar_t, S> a, S* cost) {
  const int64_t rows = a.rows(), columns = a.batch * a.targets;
  cuda::for_each_element(rows * a.targets, a.targets, [&](int64_t i, int64_t r, int64_t j) {
    const int64_t image = (r / a.queries) % a.batch, c = a.label(image, j);
    if (c < 0) {  // padded targets (and labels outside the classes, refused before) cost exactly 0
      cost[i] = S(0);
      return;
    }
    S q[kBoxValues], t[kBoxValues];
    a.query_values(r, q);
    for (int k = 0; k < kBoxValues; ++k) t[k] = a.target_values[k * columns + image * a.targets + j];
    const S x = static_cast<S>(a.logits[r * a.classes + c]);
    const S class_cost =
        a.prm.class_cost == kFocal ? focal_class(a.prm, x) : -(std::exp(x - a.softmax[r]) * a.softmax[rows + r]);
    cost[i] = pair_cost(a.prm, q, t, class_cost);
  });
}

struct CudaKernels {
  template <typename scalar_t, typename S>
  static void prepare(const Tensors& t, int64_t class_cost, Tensor& softmax, Tensor& target_values) {
    const cuda::DeviceGuard guard(target_values);
    const int64_t rows = softmax.size(1), columns = target_values.size(1);
    if (class_cost == kSoftmax)
      cuda::launch_over(rows, softmax_stats_kernel<scalar_t, S>, t.logits.const_data_ptr<scalar_t>(), rows, t.classes,
                        softmax.mutable_data_ptr<S>());
    if (columns > 0)
      cuda::launch_over(columns, target_values_kernel<S>, t.tgt_boxes.const_data_ptr<S>(), columns,
                        target_values.mutable_data_ptr<S>());
  }

  template <typename scalar_t, typename S>
  static void costs(const Args<scalar_t, S>& a, Tensor& out) {
    const cuda::DeviceGuard guard(out);
    cuda::launch_over(out.numel(), cost_kernel<scalar_t, S>, a, out.mutable_data_ptr<S>());
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) { m.impl("matching_cost", TORCH_BOX(&costs<CudaKernels>)); }

}  // namespace fastloss::matching_cost
