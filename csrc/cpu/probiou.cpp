// CPU kernels of fastloss::probiou (math/probiou.h): the pair loops of cpu/box_pairs.h.
#include "cpu/box_pairs.h"
#include "ops/probiou.h"

namespace fastloss::probiou {

STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, m) {
  m.impl("probiou", TORCH_BOX((&box_pairs::forward<Op, box_pairs::CpuKernels>)));
  m.impl("probiou_backward", TORCH_BOX((&box_pairs::backward<Op, box_pairs::CpuKernels>)));
  m.impl("probiou_xywhr", TORCH_BOX((&box_pairs::forward_with<XywhrOp, box_pairs::CpuKernels>)));
  m.impl("probiou_xywhr_backward", TORCH_BOX((&box_pairs::backward_with<XywhrOp, box_pairs::CpuKernels>)));
}

}  // namespace fastloss::probiou
