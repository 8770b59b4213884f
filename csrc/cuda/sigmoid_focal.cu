// CUDA kernels of fastloss::sigmoid_focal_loss: grid-stride loops over math/sigmoid_focal.h and
// math/quality_focal.h (the formulas the CPU tests prove), fp32 math for half inputs, 64-bit
// indices, reductions through cuda/reduce.cuh (per layer: one grid row per layer, blockIdx.y).
// Labels are compared with the column index, never used as addresses.
#include "cuda/launch.cuh"
#include "cuda/reduce.cuh"
#include "ops/sigmoid_focal.h"

namespace fastloss::sigmoid_focal {
namespace {

// Loss and/or derivatives of element i = (r, c); false where the row's label is ignored.
template <bool kLoss, bool kGradX, bool kGradT, typename scalar_t, typename target_t, typename opmath_t>
__device__ __forceinline__ bool eval(const Args<scalar_t, target_t>& a, int64_t i, int64_t r, int64_t c, opmath_t& loss,
                                     opmath_t& dx, opmath_t& dt) {
  const opmath_t x = static_cast<opmath_t>(a.x[i]);
  const bool quality = a.prm.variant != kFocal;
  if (a.labels == nullptr) {
    const opmath_t t = static_cast<opmath_t>(a.t[i]);
    if (quality) {
      const opmath_t m = a.positive != nullptr ? a.positive[i] : quality_focal::score_positive(t);
      quality_focal::eval<kLoss, kGradX>(x, t, m, a.prm, loss, dx);
    } else {
      soft<kLoss, kGradX, kGradT>(x, t, a.prm, loss, dx, dt);
    }
    return true;
  }
  const int64_t label = a.labels[r];
  if (a.ignored(label)) return false;
  const bool positive = label == c;
  if (positive && quality) {  // the label's target is its score (1 without scores)
    const opmath_t score = a.scores != nullptr ? a.scores[r] : opmath_t(1);
    const opmath_t m = a.prm.label_mask || score > 0 ? opmath_t(1) : opmath_t(0);
    quality_focal::eval<kLoss, kGradX>(x, score, m, a.prm, loss, dx);
    return true;
  }
  if (positive && a.scores != nullptr) {  // the label's target is its score (soft)
    opmath_t unused_dt;
    soft<kLoss, kGradX, false>(x, a.scores[r], a.prm, loss, dx, unused_dt);
    return true;
  }
  opmath_t dz;
  binary<kLoss, kGradX>(positive ? x : -x, positive ? a.prm.alpha_pos : a.prm.alpha_neg, a.prm, loss, dz);
  if constexpr (kGradX) dx = positive ? dz : -dz;
  return true;
}

// out: the loss in the inputs' dtype or the math type (ops/sigmoid_focal.h: loss_dtype)
template <typename scalar_t, typename target_t, typename out_t,
          typename opmath_t = typename Args<scalar_t, target_t>::opmath_t>
__global__ void forward_none_kernel(Args<scalar_t, target_t> a, out_t* out) {
  cuda::for_each_element(a.rows * a.cols, a.cols, [&](int64_t i, int64_t r, int64_t c) {
    opmath_t loss = 0, unused;
    if (eval<true, false, false>(a, i, r, c, loss, unused, unused)) loss *= a.weight.template value<opmath_t>(r, c);
    out[i] = static_cast<out_t>(loss);
  });
}

template <typename scalar_t, typename target_t, typename opmath_t = typename Args<scalar_t, target_t>::opmath_t>
__global__ void forward_sum_kernel(Args<scalar_t, target_t> stacked, cuda::Partials<opmath_t> partials) {
  const Args<scalar_t, target_t> a = stacked.layer(blockIdx.y);  // (blockIdx.y: the layer; 0 unstacked)
  opmath_t sum = 0;
  int64_t count = 0;
  cuda::for_each_element(a.rows * a.cols, a.cols, [&](int64_t i, int64_t r, int64_t c) {
    opmath_t loss, unused;
    if (eval<true, false, false>(a, i, r, c, loss, unused, unused)) {
      sum += loss * a.weight.template value<opmath_t>(r, c);
      ++count;
    }
  });
  partials.store(sum, count);
}

// grad_x (and grad_t) = d loss / d input × weight × (grad of "none" in G, or grad / count of "mean").
template <typename scalar_t, typename target_t, bool kGradT, typename G,
          typename opmath_t = typename Args<scalar_t, target_t>::opmath_t>
__global__ void backward_kernel(Args<scalar_t, target_t> stacked, RowOperand<G> grad, const opmath_t* grad_scalar,
                                const int64_t* count, bool mean, scalar_t* gx, target_t* gt) {
  const int64_t l = blockIdx.y;  // the layer of a per-layer reduced loss (else 0)
  const Args<scalar_t, target_t> a = stacked.layer(l);
  gx += l * a.rows * a.cols;
  if constexpr (kGradT) gt += l * a.rows * a.cols;
  opmath_t scale = 1;
  if (grad_scalar != nullptr) scale = grad_scalar[l] / static_cast<opmath_t>(mean && count[l] > 1 ? count[l] : 1);
  cuda::for_each_element(a.rows * a.cols, a.cols, [&](int64_t i, int64_t r, int64_t c) {
    opmath_t dx = 0, dt = 0, unused;
    if (eval<false, true, kGradT>(a, i, r, c, unused, dx, dt)) {
      const opmath_t f = scale * a.weight.template value<opmath_t>(r, c) * grad.template value<opmath_t>(r, c);
      dx *= f;
      dt *= f;
    }
    gx[i] = static_cast<scalar_t>(dx);
    if constexpr (kGradT) gt[i] = static_cast<target_t>(dt);
  });
}

struct CudaKernels {
  template <typename scalar_t, typename target_t>
  static void forward(const Args<scalar_t, target_t>& a, int64_t layers, int64_t reduction, Tensor& loss,
                      Tensor& count) {
    using opmath_t = typename Args<scalar_t, target_t>::opmath_t;
    const cuda::DeviceGuard guard(loss);
    const int64_t n = a.rows * a.cols;
    if (reduction == kNone) {
      if (n == 0) return;
      // (a loss in the logits' dtype only where the targets' dtype promotes into it)
      if constexpr (promotes_to<target_t, scalar_t>) {
        if (loss.scalar_type() == scalar_type_of<scalar_t>)
          return cuda::launch_over(n, forward_none_kernel<scalar_t, target_t, scalar_t>, a,
                                   loss.mutable_data_ptr<scalar_t>());
      }
      return cuda::launch_over(n, forward_none_kernel<scalar_t, target_t, opmath_t>, a,
                               loss.mutable_data_ptr<opmath_t>());
    }
    cuda::reduce_launch_segments<opmath_t, opmath_t>(cuda::grid_size(forward_sum_kernel<scalar_t, target_t>, n),
                                                     static_cast<int>(std::max<int64_t>(layers, 1)), reduction == kMean,
                                                     loss, count, forward_sum_kernel<scalar_t, target_t>, a);
  }

  template <typename scalar_t, typename target_t, bool kGradT>
  static void backward(const Args<scalar_t, target_t>& a, int64_t layers, const Tensor& grad, const Tensor& count,
                       int64_t reduction, Tensor& gx, Tensor& gt) {
    using opmath_t = typename Args<scalar_t, target_t>::opmath_t;
    const cuda::DeviceGuard guard(gx);
    const int64_t n = a.rows * a.cols;
    if (n == 0) return;
    scalar_t* out_x = gx.mutable_data_ptr<scalar_t>();
    target_t* out_t = kGradT ? gt.mutable_data_ptr<target_t>() : nullptr;
    const int64_t* counted = count.const_data_ptr<int64_t>();
    if (reduction != kNone) {
      const auto kernel = backward_kernel<scalar_t, target_t, kGradT, opmath_t>;
      return cuda::launch(dim3(cuda::grid_size(kernel, n), static_cast<unsigned>(std::max<int64_t>(layers, 1))), kernel,
                          a, RowOperand<opmath_t>{}, grad.const_data_ptr<opmath_t>(), counted, reduction == kMean,
                          out_x, out_t);
    }
    // the upstream gradient has the loss's dtype (see forward)
    if constexpr (promotes_to<target_t, scalar_t>) {
      if (grad.scalar_type() == scalar_type_of<scalar_t>)
        return cuda::launch_over(n, backward_kernel<scalar_t, target_t, kGradT, scalar_t>, a,
                                 row_operand<scalar_t>(grad), static_cast<const opmath_t*>(nullptr), counted, false,
                                 out_x, out_t);
    }
    cuda::launch_over(n, backward_kernel<scalar_t, target_t, kGradT, opmath_t>, a, row_operand<opmath_t>(grad),
                      static_cast<const opmath_t*>(nullptr), counted, false, out_x, out_t);
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("sigmoid_focal_loss", TORCH_BOX(&forward<CudaKernels>));
  m.impl("sigmoid_focal_loss_backward", TORCH_BOX(&backward<CudaKernels>));
}

}  // namespace fastloss::sigmoid_focal
