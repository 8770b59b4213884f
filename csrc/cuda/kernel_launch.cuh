#pragma once
// The one `<<<>>>` of fastloss, alone in its header: the CUDA emulation (tests/cuda_emulation) puts
// its own kernel_launch.cuh first on the include path and so runs every kernel, unchanged, on the CPU.
#include <cuda_runtime.h>

#ifdef FASTLOSS_CUDA_EMULATION
#error "the CUDA emulation must shadow cuda/kernel_launch.cuh with its own (tests/cuda_emulation/include)"
#endif

namespace fastloss::cuda {

template <typename... Params, typename... Args>
inline void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream, Args... args) {
  kernel<<<grid, block, 0, stream>>>(args...);
}

}  // namespace fastloss::cuda
