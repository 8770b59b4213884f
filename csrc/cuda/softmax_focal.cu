// CUDA kernels of fastloss::softmax_focal_loss over math/softmax_focal.h (the formulas the CPU tests
// prove). A group of G threads owns one position: G = 32 (a warp) for (N, C) logits, whose classes
// are contiguous, so a row is read coalesced and reduced by shuffles; G = 1 for (N, C, *spatial),
// where neighbouring threads own neighbouring positions and every class read is coalesced already.
// Loss sums go through cuda/reduce.cuh (deterministic). A label outside [0, C) that is not
// ignore_index fails a device-side assert (as F.cross_entropy's) and is never used as an address.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/macros/Macros.h>
#include <torch/library.h>
#include "cuda/launch.cuh"
#include "cuda/reduce.cuh"
#include "ops/softmax_focal.h"

namespace fastloss::softmax_focal {
namespace {

// Sum / max over the G lanes of a group (G divides 32; the whole warp is in the loop together).
template <int G, typename T>
__device__ __forceinline__ T group_sum(T v) {
  for (int o = G / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o, G);
  return v;
}
template <int G, typename T>
__device__ __forceinline__ T group_max(T v) {
  for (int o = G / 2; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o, G));
  return v;
}

// fn(position, lane) for the positions of this thread's group, grid-stride. Every lane of a group
// runs the same iterations, so the group's shuffles are safe.
template <int G, typename Fn>
__device__ __forceinline__ void for_each_position(int64_t positions, const Fn& fn) {
  const int64_t groups = int64_t(gridDim.x) * blockDim.x / G;
  const int lane = threadIdx.x % G;
  for (int64_t q = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / G; q < positions; q += groups) fn(q, lane);
}

template <int G, typename scalar_t, typename opmath_t = at::opmath_type<scalar_t>>
struct Group {
  const Args<scalar_t>& a;
  const scalar_t* x;  // the position's first logit; classes `inner` apart
  int lane;

  __device__ opmath_t logit(int64_t c) const { return static_cast<opmath_t>(x[c * a.inner]); }

  // max and log Σ exp(x − max) of the position.
  __device__ void stats(opmath_t& m, opmath_t& log_s) const {
    opmath_t s = 0;
    m = -INFINITY;
    for (int64_t c = lane; c < a.classes; c += G) m = max(m, logit(c));
    m = group_max<G>(m);
    for (int64_t c = lane; c < a.classes; c += G) s += Ops<opmath_t>::exp(logit(c) - m);
    log_s = Ops<opmath_t>::log(group_sum<G>(s));
  }

  // Terms from log p_c = (x_c − shift) − log_s (as the CPU's row_position).
  __device__ Position<opmath_t> position(int64_t y, opmath_t shift, opmath_t log_s) const {
    Position<opmath_t> p{(logit(y) - shift) - log_s, 0, a.alpha_of(y), 0};
    if (a.prm.smoothing) {
      opmath_t ax = 0, as = 0;
      for (int64_t c = lane; c < a.classes; c += G) {
        ax += a.alpha_of(c) * (logit(c) - shift);
        as += a.alpha_of(c);
      }
      p.alpha_sum = group_sum<G>(as);
      p.smooth = group_sum<G>(ax) - log_s * p.alpha_sum;
    }
    return p;
  }
};

// The label of a position, or -1 when ignored (or invalid, after the assert).
template <typename scalar_t>
__device__ __forceinline__ int64_t label_of(const Args<scalar_t>& a, int64_t position) {
  const int64_t y = a.labels[position];
  if (y == a.ignore_index) return -1;
  CUDA_KERNEL_ASSERT(y >= 0 && y < a.classes && "softmax_focal_loss: label outside [0, C) that is not ignore_index");
  return y >= 0 && y < a.classes ? y : -1;
}

template <int G, typename scalar_t, typename opmath_t = at::opmath_type<scalar_t>>
__global__ void forward_kernel(Args<scalar_t> a, LossOut<scalar_t, opmath_t> loss_out, opmath_t* lse_out,
                               cuda::Partials<opmath_t> partials) {
  opmath_t sum = 0;
  int64_t count = 0;
  for_each_position<G>(a.n * a.inner, [&](int64_t q, int lane) {
    const Group<G, scalar_t> g{a, a.logits(q), lane};
    opmath_t m, log_s;
    g.stats(m, log_s);
    const int64_t y = label_of(a, q);
    const opmath_t l = y < 0 ? opmath_t(0) : loss(g.position(y, m, log_s), a.prm) * a.weight_of(q);
    if (lane == 0) {
      lse_out[q] = m + log_s;
      loss_out.store(q, l);
      sum += l;
      count += y >= 0;
    }
  });
  partials.store(sum, count);
}

template <int G, typename scalar_t, typename opmath_t = at::opmath_type<scalar_t>>
__global__ void backward_kernel(Args<scalar_t> a, const opmath_t* grad, bool per_position, const opmath_t* lse,
                                scalar_t* gx) {
  for_each_position<G>(a.n * a.inner, [&](int64_t q, int lane) {
    const Group<G, scalar_t> g{a, a.logits(q), lane};
    scalar_t* out = gx + (g.x - a.x);
    const int64_t y = label_of(a, q);
    if (y < 0) {
      for (int64_t c = lane; c < a.classes; c += G) out[c * a.inner] = scalar_t(0);
      return;
    }
    const Coefficients<opmath_t> k = coefficients(g.position(y, lse[q], 0), a.prm);
    const opmath_t scale = grad[per_position ? q : 0] * a.weight_of(q);
    for (int64_t c = lane; c < a.classes; c += G) {
      const opmath_t p = Ops<opmath_t>::exp(g.logit(c) - lse[q]);
      out[c * a.inner] = static_cast<scalar_t>(scale * (k.k * p + (c == y ? k.d : opmath_t(0)) - k.e * a.alpha_of(c)));
    }
  });
}

// Blocks for `positions` groups of G threads.
inline int blocks_for(int64_t positions, int group) { return cuda::grid_size(positions * group); }

struct CudaKernels {
  template <typename scalar_t>
  static void forward(const Args<scalar_t>& a, int64_t reduction, at::Tensor& loss, at::Tensor& lse,
                      at::Tensor& count) {
    using opmath_t = at::opmath_type<scalar_t>;
    const c10::cuda::CUDAGuard guard(loss.device());
    const int64_t positions = a.n * a.inner;
    if (positions == 0) {
      loss.zero_();
      return;
    }
    auto run = [&](auto kernel, int group) {
      // Every reduction sums (the count is the "mean" divisor the Python layer applies); "none"
      // also writes each position's loss.
      at::Tensor total = at::empty({}, lse.options());
      cuda::reduce_launch<opmath_t, opmath_t>(blocks_for(positions, group), false, total, count, kernel, a,
                                              fastloss::loss_out<scalar_t, opmath_t>(loss, reduction == kNone),
                                              lse.mutable_data_ptr<opmath_t>());
      if (reduction != kNone) loss.copy_(total);
    };
    if (a.inner == 1) {
      run(forward_kernel<32, scalar_t>, 32);
    } else {
      run(forward_kernel<1, scalar_t>, 1);
    }
  }

  template <typename scalar_t>
  static void backward(const Args<scalar_t>& a, const at::Tensor& grad, const at::Tensor& lse,
                       at::Tensor& grad_input) {
    using opmath_t = at::opmath_type<scalar_t>;
    const c10::cuda::CUDAGuard guard(grad_input.device());
    const int64_t positions = a.n * a.inner;
    if (positions * a.classes == 0) return;
    const opmath_t* g = grad.const_data_ptr<opmath_t>();
    const bool per_position = grad.dim() > 0;
    scalar_t* gx = grad_input.mutable_data_ptr<scalar_t>();
    if (a.inner == 1) {
      cuda::launch(blocks_for(positions, 32), backward_kernel<32, scalar_t>, a, g, per_position,
                   lse.const_data_ptr<opmath_t>(), gx);
    } else {
      cuda::launch(blocks_for(positions, 1), backward_kernel<1, scalar_t>, a, g, per_position,
                   lse.const_data_ptr<opmath_t>(), gx);
    }
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("softmax_focal_loss", &forward<CudaKernels>);
  m.impl("softmax_focal_loss_backward", &backward<CudaKernels>);
}

}  // namespace fastloss::softmax_focal
