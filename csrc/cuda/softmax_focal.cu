// CUDA kernels of fastloss::softmax_focal_loss over math/softmax_focal.h (the formulas the CPU tests
// prove). A group of G threads owns one position. (N, C) logits, whose classes are contiguous: G =
// min(32, the power of two ≥ C) lanes, so a row is read coalesced and reduced by shuffles without
// idle lanes (a whole warp for C = 4 left 28 of 32 idle). (N, C, *spatial): G = 1, neighbouring
// threads own neighbouring positions, every class read is coalesced already, and the log-sum-exp
// is one online pass over the classes (a running max rescales the sum), so a position's C logits,
// `inner` apart and out of cache for large C, are read once in the forward instead of twice.
// Loss sums go through cuda/reduce.cuh (deterministic). A label outside [0, C) that is not
// ignore_index fails a device-side assert (as F.cross_entropy's) and is never used as an address.
#include <type_traits>
#include "cuda/launch.cuh"
#include "cuda/reduce.cuh"
#include "ops/softmax_focal.h"

namespace fastloss::softmax_focal {
namespace {

// The lanes of this thread's group within its warp (G divides the warp): the shuffles' mask. Groups
// of one warp may leave the grid-stride loop at different iterations; each group only ever waits for
// its own lanes.
template <int G>
__device__ __forceinline__ cuda::LaneMask group_mask() {
  static_assert(G <= cuda::kWarpSize && cuda::kWarpSize % G == 0, "a group lies within one warp");
  if constexpr (G == cuda::kWarpSize) {
    return cuda::kAllLanes;
  } else {  // (a discarded branch: a shift by the mask's width would be undefined)
    return ((cuda::LaneMask(1) << G) - 1) << (cuda::lane_id() / G * G);
  }
}

// Sum / max over the G lanes of a group.
template <int G, typename T>
__device__ __forceinline__ T group_sum(T v) {
  for (int o = G / 2; o > 0; o >>= 1) v += __shfl_xor_sync(group_mask<G>(), v, o, G);
  return v;
}
template <int G, typename T>
__device__ __forceinline__ T group_max(T v) {
  for (int o = G / 2; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(group_mask<G>(), v, o, G));
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

template <int G, typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
struct Group {
  const Args<scalar_t>& a;
  const scalar_t* x;  // the position's first logit; classes `inner` apart
  int lane;

  __device__ opmath_t logit(int64_t c) const { return static_cast<opmath_t>(x[c * a.inner]); }

  // max and log Σ exp(x − max) of the position: two passes, or (one lane per position) one pass
  // with a running max m that rescales the sum when a larger logit comes, one exp per logit.
  // −inf logits add nothing; NaN propagates; a second +inf makes the sum NaN, as torch's.
  __device__ void stats(opmath_t& m, opmath_t& log_s) const {
    opmath_t s = 0;
    m = -INFINITY;
    if constexpr (G == 1) {
      for (int64_t c = 0; c < a.classes; ++c) {
        const opmath_t x = logit(c);
        if (x > m) {
          s = s * Ops<opmath_t>::exp(m - x) + opmath_t(1);
          m = x;
        } else if (x != -INFINITY) {
          s += Ops<opmath_t>::exp(x - m);
        }
      }
      log_s = Ops<opmath_t>::log(s);
    } else {  // (not compiled for G = 1, where nvcc would flag the code after the return unreachable)
      for (int64_t c = lane; c < a.classes; c += G) m = max(m, logit(c));
      m = group_max<G>(m);
      for (int64_t c = lane; c < a.classes; c += G) s += Ops<opmath_t>::exp(logit(c) - m);
      log_s = Ops<opmath_t>::log(group_sum<G>(s));
    }
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
  if (y < 0 || y >= a.classes)  // name it: the assert's own message cannot
    printf("fastloss.softmax_focal_loss: target has label %lld outside [0, %lld) that is not ignore_index\n",
           static_cast<long long>(y), static_cast<long long>(a.classes));
  CUDA_KERNEL_ASSERT(y >= 0 && y < a.classes && "softmax_focal_loss: label outside [0, C) that is not ignore_index");
  return y >= 0 && y < a.classes ? y : -1;
}

template <int G, typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
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

template <int G, typename scalar_t, typename opmath_t = math_type_t<scalar_t>>
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

// Blocks for `positions` groups of G threads of `kernel`.
template <typename Kernel>
inline int blocks_for(Kernel kernel, int64_t positions, int group) {
  return cuda::grid_size(kernel, positions * group);
}

// The lanes per (N, C) row: min(32, the power of two ≥ C).
inline int row_group(int64_t classes) {
  int g = 1;
  while (g < 32 && g < classes) g *= 2;
  return g;
}

// fn(std::integral_constant<int, G>) for the group size of this layout.
template <typename Fn>
void with_group(int64_t inner, int64_t classes, const Fn& fn) {
  switch (inner == 1 ? row_group(classes) : 1) {
    case 1: return fn(std::integral_constant<int, 1>{});
    case 2: return fn(std::integral_constant<int, 2>{});
    case 4: return fn(std::integral_constant<int, 4>{});
    case 8: return fn(std::integral_constant<int, 8>{});
    case 16: return fn(std::integral_constant<int, 16>{});
    default: return fn(std::integral_constant<int, 32>{});
  }
}

struct CudaKernels {
  template <typename scalar_t>
  static void forward(const Args<scalar_t>& a, int64_t reduction, Tensor& loss, Tensor& lse, Tensor& count) {
    using opmath_t = math_type_t<scalar_t>;
    const cuda::DeviceGuard guard(loss);
    const int64_t positions = a.n * a.inner;
    if (positions == 0) {
      torch::stable::zero_(loss);
      return;
    }
    with_group(a.inner, a.classes, [&](auto group) {
      constexpr int G = decltype(group)::value;
      // Every reduction sums (the count is the "mean" divisor the Python layer applies); "none"
      // also writes each position's loss.
      Tensor total = empty({}, options(lse));
      const auto kernel = forward_kernel<G, scalar_t>;
      cuda::reduce_launch<opmath_t, opmath_t>(blocks_for(kernel, positions, G), false, total, count, kernel, a,
                                              fastloss::loss_out<scalar_t, opmath_t>(loss, reduction == kNone),
                                              lse.mutable_data_ptr<opmath_t>());
      if (reduction != kNone) torch::stable::copy_(loss, total);
    });
  }

  template <typename scalar_t>
  static void backward(const Args<scalar_t>& a, const Tensor& grad, const Tensor& lse, Tensor& grad_input) {
    using opmath_t = math_type_t<scalar_t>;
    const cuda::DeviceGuard guard(grad_input);
    const int64_t positions = a.n * a.inner;
    if (positions * a.classes == 0) return;
    const opmath_t* g = grad.const_data_ptr<opmath_t>();
    const bool per_position = grad.numel() > 1;  // (a reduced loss's grad may be (1,) or (1, 1): not per position)
    scalar_t* gx = grad_input.mutable_data_ptr<scalar_t>();
    with_group(a.inner, a.classes, [&](auto group) {
      constexpr int G = decltype(group)::value;
      const auto kernel = backward_kernel<G, scalar_t>;
      cuda::launch(blocks_for(kernel, positions, G), kernel, a, g, per_position, lse.const_data_ptr<opmath_t>(), gx);
    });
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("softmax_focal_loss", TORCH_BOX(&forward<CudaKernels>));
  m.impl("softmax_focal_loss_backward", TORCH_BOX(&backward<CudaKernels>));
}

}  // namespace fastloss::softmax_focal
