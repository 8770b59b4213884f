// CUDA kernels of fastloss::overlap_sums over math/overlap.h (the formulas the CPU tests prove).
// Forward: a block per (sample, chunk of positions); each thread keeps the softmax statistics of
// its positions, and for every class the block reduces its three sums (cuda/reduce.cuh) into one
// partial per chunk; a second kernel adds the chunks in order (deterministic); p goes into the
// buffer that becomes the gradient. Backward: a thread per position, in place over that buffer.
// Labels are only compared with class indices, never used as addresses; a label outside [0, C) that
// is not ignore_index is a device-side assert (the CPU raises a ValueError), as in torch's losses.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/macros/Macros.h>
#include <torch/library.h>
#include "cuda/launch.cuh"
#include "cuda/reduce.cuh"
#include "ops/overlap.h"

namespace fastloss::overlap {
namespace {

constexpr int kPositionsPerThread = 4;
constexpr int64_t kChunkPositions = int64_t(cuda::kThreads) * kPositionsPerThread;

template <typename scalar_t, typename target_t, typename opmath_t = pair_math_t<scalar_t, target_t>>
struct Position {
  const Args<scalar_t, target_t>* a = nullptr;
  int64_t n = 0, i = 0, label = 0;
  bool valid = false;

  Position() = default;
  __device__ Position(const Args<scalar_t, target_t>& args, int64_t sample, int64_t pos) : a(&args), n(sample), i(pos) {
    valid = i < a->hw;
    if (valid && a->labels != nullptr) {
      label = a->labels[n * a->hw + i];
      valid = !(a->has_ignore && label == a->ignore_index);
      CUDA_KERNEL_ASSERT((!valid || (label >= 0 && label < a->label_count())) &&
                         "dice_loss/tversky_loss: target has a label outside [0, C) that is not ignore_index");
    }
  }
  __device__ int64_t offset(int64_t c) const { return (n * a->classes + c) * a->hw + i; }
  __device__ opmath_t x(int64_t c) const { return static_cast<opmath_t>(a->x[offset(c)]); }
  __device__ opmath_t t(int64_t c) const {
    if (a->labels != nullptr) return label == c + a->label_offset ? opmath_t(1) : opmath_t(0);
    return static_cast<opmath_t>(a->t[offset(c)]);
  }
  __device__ SoftmaxStats<opmath_t> stats() const {
    return softmax_stats<opmath_t>(a->classes, [&](int64_t c) { return x(c); });
  }
  __device__ opmath_t prob(int64_t c, const SoftmaxStats<opmath_t>& s) const {
    return a->activation == kSoftmax ? s.prob(x(c)) : activate_elementwise(a->activation, x(c));
  }
};

template <typename scalar_t, typename target_t, typename opmath_t = pair_math_t<scalar_t, target_t>>
__global__ void partial_sums_kernel(Args<scalar_t, target_t> a, int64_t chunks, opmath_t* partial, scalar_t* probs) {
  for (int64_t item = blockIdx.x; item < a.n * chunks; item += gridDim.x) {  // the same for the whole block
    const int64_t n = item / chunks, base = (item % chunks) * kChunkPositions;
    // This thread's positions (label read once) and their softmax statistics, kept for every class.
    Position<scalar_t, target_t> pos[kPositionsPerThread];
    SoftmaxStats<opmath_t> stats[kPositionsPerThread];
    for (int j = 0; j < kPositionsPerThread; ++j) {
      pos[j] = Position<scalar_t, target_t>(a, n, base + threadIdx.x + j * cuda::kThreads);
      if (pos[j].i < a.hw && a.activation == kSoftmax) stats[j] = pos[j].stats();
    }
    for (int64_t c = 0; c < a.classes; ++c) {
      opmath_t s_pt = 0, s_p = 0, s_t = 0;
      for (int j = 0; j < kPositionsPerThread; ++j) {
        if (pos[j].i >= a.hw) continue;
        const opmath_t p = pos[j].prob(c, stats[j]);
        if (probs != nullptr) probs[pos[j].offset(c)] = static_cast<scalar_t>(p);
        if (!pos[j].valid) continue;
        const opmath_t t = pos[j].t(c);
        s_pt += p * t;
        s_p += a.squared ? p * p : p;
        s_t += a.squared ? t * t : t;
      }
      s_pt = cuda::block_sum(s_pt);
      s_p = cuda::block_sum(s_p);
      s_t = cuda::block_sum(s_t);
      if (threadIdx.x == 0) {
        opmath_t* out = partial + (item * a.classes + c) * 3;
        out[0] = s_pt;
        out[1] = s_p;
        out[2] = s_t;
      }
    }
  }
}

template <typename opmath_t>
__global__ void combine_chunks_kernel(const opmath_t* partial, int64_t samples, int64_t chunks, int64_t per_sample,
                                      opmath_t* sums) {
  cuda::for_each_element(samples * per_sample, per_sample, [&](int64_t j, int64_t n, int64_t k) {
    opmath_t total = 0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) total += partial[(n * chunks + chunk) * per_sample + k];
    sums[j] = total;
  });
}

template <typename scalar_t, typename target_t, typename opmath_t = pair_math_t<scalar_t, target_t>>
__global__ void backward_kernel(Args<scalar_t, target_t> a, const opmath_t* coef, scalar_t* probs) {
  cuda::for_each_element(a.n * a.hw, a.hw, [&](int64_t, int64_t n, int64_t i) {
    const Position<scalar_t, target_t> pos(a, n, i);
    scalar_t* out = probs + n * a.classes * a.hw + i;  // p on entry, dL/dinput on exit
    if (!pos.valid) {
      for (int64_t c = 0; c < a.classes; ++c) out[c * a.hw] = scalar_t(0);
      return;
    }
    auto grad_p = [&](int64_t c, opmath_t p) {
      const opmath_t* abc = coef + (n * a.classes + c) * 3;
      return grad_prob(abc[0], abc[1], pos.t(c), p, a.squared);
    };
    auto p = [&](int64_t c) { return static_cast<opmath_t>(out[c * a.hw]); };
    opmath_t dot = 0;
    if (a.activation == kSoftmax) {
      for (int64_t c = 0; c < a.classes; ++c) dot += p(c) * grad_p(c, p(c));
    }
    for (int64_t c = 0; c < a.classes; ++c) {
      const opmath_t pc = p(c), g = grad_p(c, pc);
      out[c * a.hw] = static_cast<scalar_t>(a.activation == kSoftmax ? pc * (g - dot) : elementwise_vjp(a.activation, g, pc));
    }
  });
}

struct CudaKernels {
  template <typename scalar_t, typename target_t>
  static void forward(const Args<scalar_t, target_t>& a, at::Tensor& sums, scalar_t* probs) {
    using opmath_t = pair_math_t<scalar_t, target_t>;
    const c10::cuda::CUDAGuard guard(sums.device());
    const int64_t chunks = (a.hw + kChunkPositions - 1) / kChunkPositions, per_sample = a.classes * 3;
    if (a.n * per_sample == 0) return;
    if (chunks == 0) {  // no positions: every sum is 0
      sums.zero_();
      return;
    }
    const at::Tensor partial = at::empty({a.n * chunks * per_sample}, sums.options());
    const int blocks = static_cast<int>(std::min<int64_t>(a.n * chunks, int64_t(1) << 20));
    cuda::launch(blocks, partial_sums_kernel<scalar_t, target_t>, a, chunks, partial.mutable_data_ptr<opmath_t>(), probs);
    cuda::launch(cuda::grid_size(a.n * per_sample), combine_chunks_kernel<opmath_t>, partial.const_data_ptr<opmath_t>(),
                 a.n, chunks, per_sample, sums.mutable_data_ptr<opmath_t>());
  }

  template <typename scalar_t, typename target_t>
  static void backward(const Args<scalar_t, target_t>& a, const at::Tensor& grad_sums, scalar_t* probs) {
    using opmath_t = pair_math_t<scalar_t, target_t>;
    const c10::cuda::CUDAGuard guard(grad_sums.device());
    if (a.n * a.hw * a.classes == 0) return;
    cuda::launch(cuda::grid_size(a.n * a.hw), backward_kernel<scalar_t, target_t>, a, grad_sums.const_data_ptr<opmath_t>(), probs);
  }
};

// The loss from the sums: one thread walks the tiny (N, C) matrix (math/overlap_score.h), in the
// same order as the CPU.
template <typename S>
__global__ void scores_kernel(const S* sums, const S* class_weight, int64_t n, int64_t classes, ScoreParams<S> p,
                              S* loss, const S* grad, S* grad_sums) {
  if (threadIdx.x == 0) scores<S>(sums, class_weight, n, classes, p, loss, grad, grad_sums);
}

struct CudaScores {
  template <typename S>
  static void scores(const at::Tensor& sums, const at::Tensor& class_weight, const ScoreParams<S>& p, at::Tensor* loss,
                     const at::Tensor* grad, at::Tensor* grad_sums) {
    const c10::cuda::CUDAGuard guard(sums.device());
    cuda::launch(1, scores_kernel<S>, sums.const_data_ptr<S>(),
                 class_weight.defined() ? class_weight.const_data_ptr<S>() : nullptr, sums.size(0), sums.size(1), p,
                 loss ? loss->mutable_data_ptr<S>() : nullptr, grad ? grad->const_data_ptr<S>() : nullptr,
                 grad_sums ? grad_sums->mutable_data_ptr<S>() : nullptr);
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("overlap_score", &score_forward<CudaScores>);
  m.impl("overlap_score_backward", &score_backward<CudaScores>);
  m.impl("overlap_sums", &forward<CudaKernels>);
  m.impl("overlap_sums_backward_", &backward<CudaKernels>);
}

}  // namespace fastloss::overlap
