// CUDA kernels of fastloss::rotated_box_iou (math/rotated_iou.h): the pair loops of cuda/box_pairs.cuh.
#include "cuda/box_pairs.cuh"
#include "ops/rotated_box_iou.h"

namespace fastloss::rotated_iou {

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("rotated_box_iou", TORCH_BOX((&box_pairs::forward<Op, box_pairs::CudaKernels>)));
  m.impl("rotated_box_iou_backward", TORCH_BOX((&box_pairs::backward<Op, box_pairs::CudaKernels>)));
}

}  // namespace fastloss::rotated_iou
