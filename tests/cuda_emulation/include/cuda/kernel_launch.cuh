#pragma once
// The CUDA emulation's launch, shadowing csrc/cuda/kernel_launch.cuh (its `<<<>>>`): the kernel's
// parameters are copied once, as a launch does, and runtime.cpp runs the grid on the CPU — every
// block's threads as fibers — after checking the configuration and the stream.
#include <cuda_runtime.h>
#include <tuple>
#include <type_traits>

extern "C" void fastloss_emu_launch(const void* kernel, dim3 grid, dim3 block, size_t shared, cudaStream_t stream,
                                    void (*run)(const void* closure), const void* closure);

namespace fastloss::cuda {

template <typename... Params>
struct EmulatedLaunch {
  void (*kernel)(Params...);
  std::tuple<std::decay_t<Params>...> params;

  // Each thread calls the kernel with its own copies of the parameters, as on a GPU.
  static void run(const void* closure) {
    const auto& self = *static_cast<const EmulatedLaunch*>(closure);
    std::apply([&](const auto&... p) { self.kernel(p...); }, self.params);
  }
};

template <typename... Params, typename... Args>
inline void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream, Args... args) {
  const EmulatedLaunch<Params...> closure{kernel, std::tuple<std::decay_t<Params>...>(args...)};
  fastloss_emu_launch(reinterpret_cast<const void*>(kernel), grid, block, 0, stream, &EmulatedLaunch<Params...>::run,
                      &closure);
}

}  // namespace fastloss::cuda
