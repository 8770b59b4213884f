#pragma once
// Host side of fastloss::distribution_focal_loss (math: math/distribution_focal.h), shared by
// cpu/distribution_focal.cpp and cuda/distribution_focal.cu: argument checks, the kernels'
// arguments and the op's entry points.
#include <cmath>
#include <optional>
#include "common/reduction.h"
#include "math/distribution_focal.h"
#include "ops/tensor_args.h"

namespace fastloss::distribution_focal {

constexpr const char* kOp = "fastloss::distribution_focal_loss";

// pred contiguous (rows × bins); target and the weight (optional) contiguous, one per row, in the
// math type.
struct Tensors {
  Tensor pred, target, weight;
  int64_t rows = 0, bins = 0;
};

inline Tensors check(const Tensor& pred, const Tensor& target, const std::optional<Tensor>& weight, double target_max,
                     int64_t reduction) {
  FASTLOSS_CHECK(is_floating(pred.scalar_type()), kOp, ": pred must be floating point, got ", pred.scalar_type());
  FASTLOSS_CHECK(pred.dim() >= 1 && pred.size(-1) >= 1, kOp, ": pred must have a bin dimension, got ", pred.sizes());
  FASTLOSS_CHECK_VALUE(target.sizes() == pred.sizes().slice(0, pred.dim() - 1), kOp,
                       ": target must have shape pred.shape[:-1] = ", pred.sizes().slice(0, pred.dim() - 1), ", got ",
                       target.sizes());
  FASTLOSS_CHECK(is_floating(target.scalar_type()), kOp, ": target must be floating point, got ", target.scalar_type());
  check_same_device(kOp, pred, target, "target");
  FASTLOSS_CHECK(std::isfinite(target_max) && (target_max < 0 || target_max <= pred.size(-1) - 1), kOp,
                 ": target_max must be in [0, bins - 1] (or negative: none), got ", target_max);
  FASTLOSS_CHECK(reduction >= kNone && reduction <= kMean, kOp, ": unknown reduction code ", reduction);
  const auto math = op_math_type(pred.scalar_type());
  Tensors a{as_contiguous(pred), as_contiguous(as_type(target, math)), math_operand(kOp, pred, weight, "weight"), 0,
            pred.size(-1)};
  a.rows = target.numel();
  if (a.weight.defined()) {
    FASTLOSS_CHECK_VALUE(a.weight.sizes() == target.sizes(), kOp, ": weight must have the target's shape ",
                         target.sizes(), ", got ", a.weight.sizes());
    a.weight = as_contiguous(a.weight);
  }
  return a;
}

template <typename scalar_t>
struct Args {
  using opmath_t = math_type_t<scalar_t>;
  const scalar_t* pred;
  const opmath_t* target;
  const opmath_t* weight;  // or nullptr
  int64_t rows, bins;
  opmath_t target_max;  // < 0: no clamp

  FASTLOSS_HD Bins<opmath_t> row_bins(int64_t r) const { return distribution_focal::bins(target[r], bins, target_max); }
  FASTLOSS_HD opmath_t weight_of(int64_t r) const { return weight != nullptr ? weight[r] : opmath_t(1); }
};

template <typename scalar_t>
inline Args<scalar_t> make_args(const Tensors& a, double target_max) {
  using opmath_t = math_type_t<scalar_t>;
  return Args<scalar_t>{a.pred.const_data_ptr<scalar_t>(),
                        a.target.const_data_ptr<opmath_t>(),
                        a.weight.defined() ? a.weight.const_data_ptr<opmath_t>() : nullptr,
                        a.rows,
                        a.bins,
                        static_cast<opmath_t>(target_max)};
}

// Entry points, registered by the CPU and CUDA files with their loops:
//   struct Kernels {
//     template <typename scalar_t> static void forward(const Args<scalar_t>&, int64_t reduction, Tensor& loss,
//         Tensor& lse);
//     template <typename scalar_t> static void backward(const Args<scalar_t>&, const Tensor& grad,
//         const Tensor& lse, int64_t reduction, Tensor& grad_pred);
//   };
// The loss is in the math type: the target's shape for "none", else a scalar ("mean": over the rows).
// lse (one per row, math type) is saved for the backward. The gradient of "none" arrives contiguous
// of the target's shape in the math type; of a reduced loss, as a 0-d tensor.
template <typename Kernels>
std::tuple<Tensor, Tensor> forward(const Tensor& pred, const Tensor& target, const std::optional<Tensor>& weight,
                                   double target_max, int64_t reduction) {
  const Tensors a = check(pred, target, weight, target_max, reduction);
  const auto opts = options(a.pred).with(op_math_type(a.pred.scalar_type()));
  Tensor loss = reduction == kNone ? empty(target.sizes(), opts) : empty({}, opts);
  Tensor lse = empty(target.sizes(), opts);
  dispatch_floating(a.pred.scalar_type(), [&](auto type) {
    using scalar_t = typename decltype(type)::type;
    Kernels::template forward<scalar_t>(make_args<scalar_t>(a, target_max), reduction, loss, lse);
  });
  return {loss, lse};
}

template <typename Kernels>
Tensor backward(const Tensor& grad, const Tensor& pred, const Tensor& target, const std::optional<Tensor>& weight,
                const Tensor& lse, double target_max, int64_t reduction) {
  const Tensors a = check(pred, target, weight, target_max, reduction);
  check_same_device(kOp, a.pred, grad, "grad");
  check_same_device(kOp, a.pred, lse, "lse");
  const auto math = op_math_type(a.pred.scalar_type());
  FASTLOSS_CHECK(lse.sizes() == target.sizes() && lse.scalar_type() == math, kOp, ": lse must be the forward's");
  Tensor g;
  if (reduction == kNone) {
    FASTLOSS_CHECK(grad.sizes() == target.sizes(), kOp, ": the gradient of \"none\" must have the target's shape");
    g = as_contiguous(as_type(grad, math));
  } else {
    FASTLOSS_CHECK(grad.numel() == 1, kOp, ": the gradient of a reduced loss must have one element");
    g = as_type(reshaped(grad, {}), math);
  }
  Tensor grad_pred = empty(a.pred.sizes(), options(a.pred));
  const Tensor saved = as_contiguous(lse);
  dispatch_floating(a.pred.scalar_type(), [&](auto type) {
    using scalar_t = typename decltype(type)::type;
    Kernels::template backward<scalar_t>(make_args<scalar_t>(a, target_max), g, saved, reduction, grad_pred);
  });
  return grad_pred;
}

}  // namespace fastloss::distribution_focal
