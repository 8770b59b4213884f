// CUDA kernels of fastloss::probiou (math/probiou.h): the pair loops of cuda/box_pairs.cuh.
#include "cuda/box_pairs.cuh"
#include "ops/probiou.h"

namespace fastloss::probiou {

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("probiou", TORCH_BOX((&box_pairs::forward<Op, box_pairs::CudaKernels>)));
  m.impl("probiou_backward", TORCH_BOX((&box_pairs::backward<Op, box_pairs::CudaKernels>)));
  m.impl("probiou_xywhr", TORCH_BOX((&box_pairs::forward_with<XywhrOp, box_pairs::CudaKernels>)));
  m.impl("probiou_xywhr_backward", TORCH_BOX((&box_pairs::backward_with<XywhrOp, box_pairs::CudaKernels>)));
}

}  // namespace fastloss::probiou
