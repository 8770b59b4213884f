// CPU kernels of fastloss::rotated_box_iou (math/rotated_iou.h): the pair loops of cpu/box_pairs.h.
#include "cpu/box_pairs.h"
#include "ops/rotated_box_iou.h"

namespace fastloss::rotated_iou {

STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, m) {
  m.impl("rotated_box_iou", TORCH_BOX((&box_pairs::forward<Op, box_pairs::CpuKernels>)));
  m.impl("rotated_box_iou_backward", TORCH_BOX((&box_pairs::backward<Op, box_pairs::CpuKernels>)));
}

}  // namespace fastloss::rotated_iou
