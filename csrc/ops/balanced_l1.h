#pragma once
// Host side of fastloss::balanced_l1_loss (math: math/balanced_l1.h), shared by cpu/balanced_l1.cpp
// and cuda/balanced_l1.cu: argument checks, the kernels' arguments and the op's entry points.
#include <cmath>
#include <optional>
#include <tuple>
#include "common/reduction.h"
#include "math/balanced_l1.h"
#include "ops/tensor_args.h"

namespace fastloss::balanced_l1 {

constexpr const char* kOp = "fastloss::balanced_l1_loss";

// pred, target and the weight (optional) contiguous, of one shape; pred and target in one floating
// dtype, the weight in the math type (fastloss.balanced_l1 prepares them so).
struct Tensors {
  Tensor pred, target, weight;
};

inline Tensors check(const Tensor& pred, const Tensor& target, const std::optional<Tensor>& weight, double alpha,
                     double gamma, double beta, int64_t reduction) {
  FASTLOSS_CHECK(is_floating(pred.scalar_type()), kOp, ": pred must be floating point, got ", pred.scalar_type());
  FASTLOSS_CHECK(target.scalar_type() == pred.scalar_type(), kOp, ": target must have pred's dtype ",
                 pred.scalar_type(), ", got ", target.scalar_type());
  FASTLOSS_CHECK(target.sizes() == pred.sizes(), kOp, ": target must have pred's shape ", pred.sizes(), ", got ",
                 target.sizes());
  check_same_device(kOp, pred, target, "target");
  FASTLOSS_CHECK(alpha > 0 && gamma > 0 && beta > 0, kOp, ": alpha, gamma and beta must be > 0");
  FASTLOSS_CHECK(reduction >= kNone && reduction <= kMean, kOp, ": unknown reduction code ", reduction);
  Tensors a{as_contiguous(pred), as_contiguous(target), math_operand(kOp, pred, weight, "weight")};
  if (a.weight.defined()) {
    FASTLOSS_CHECK(a.weight.sizes() == pred.sizes(), kOp, ": weight must have pred's shape ", pred.sizes(), ", got ",
                   a.weight.sizes());
    a.weight = as_contiguous(a.weight);
  }
  return a;
}

template <typename scalar_t>
struct Args {
  using opmath_t = math_type_t<scalar_t>;
  const scalar_t* pred;
  const scalar_t* target;
  const opmath_t* weight;  // or nullptr
  int64_t n;
  Params<opmath_t> prm;
};

template <typename scalar_t>
inline Args<scalar_t> make_args(const Tensors& a, double alpha, double gamma, double beta) {
  using opmath_t = math_type_t<scalar_t>;
  const double b = std::expm1(gamma / alpha);
  return Args<scalar_t>{
      a.pred.const_data_ptr<scalar_t>(), a.target.const_data_ptr<scalar_t>(),
      a.weight.defined() ? a.weight.const_data_ptr<opmath_t>() : nullptr, a.pred.numel(),
      Params<opmath_t>{static_cast<opmath_t>(alpha), static_cast<opmath_t>(gamma), static_cast<opmath_t>(beta),
                       static_cast<opmath_t>(b / beta), static_cast<opmath_t>(1 / beta),
                       static_cast<opmath_t>(alpha / b), static_cast<opmath_t>(gamma / b - alpha * beta), beta == 1.0}};
}

// Entry points, registered by the CPU and CUDA files with their loops:
//   struct Kernels {
//     // the loss; with kept != nullptr also dL/dpred (unscaled) into kept
//     template <typename scalar_t> static void forward(const Args<scalar_t>&, int64_t reduction, Tensor& loss,
//         scalar_t* kept);
//     // grad_pred = dL/dpred × weight × upstream: recomputed from pred and target, or (in_place) read
//     // from grad_pred, where the forward kept it
//     template <typename scalar_t> static void backward(const Args<scalar_t>&, const Tensor& grad,
//         int64_t reduction, Tensor& grad_pred, bool in_place);
//   };
// The loss is in the math type (float32 for half inputs): pred's shape for "none", else a scalar.
// The gradient of "none" arrives as a contiguous tensor of pred's shape in the math type; of a
// reduced loss, as a one-element tensor.
template <typename Kernels>
std::tuple<Tensor, Tensor> forward(const Tensor& pred, const Tensor& target, const std::optional<Tensor>& weight,
                                   double alpha, double gamma, double beta, int64_t reduction, bool keep_grad) {
  const Tensors a = check(pred, target, weight, alpha, gamma, beta, reduction);
  // (half types recompute in the backward: a kept gradient in their dtype would be rounded twice)
  const ScalarType dtype = a.pred.scalar_type();
  FASTLOSS_CHECK_VALUE(!keep_grad || dtype == kFloat || dtype == kDouble, kOp,
                       ": keep_grad needs float32 or float64 pred, got ", a.pred.scalar_type());
  const auto opts = options(a.pred).with(op_math_type(a.pred.scalar_type()));
  Tensor loss = reduction == kNone ? empty(a.pred.sizes(), opts) : empty({}, opts);
  Tensor kept = empty(keep_grad ? sizes(a.pred) : Shape{0}, options(a.pred));
  dispatch_floating(a.pred.scalar_type(), [&](auto type) {
    using scalar_t = typename decltype(type)::type;
    Kernels::template forward<scalar_t>(make_args<scalar_t>(a, alpha, gamma, beta), reduction, loss,
                                        keep_grad ? kept.mutable_data_ptr<scalar_t>() : nullptr);
  });
  return {loss, kept};
}

// The upstream gradient as the kernels take it (above).
inline Tensor upstream_gradient(const Tensor& grad, const Tensor& pred, int64_t reduction) {
  check_same_device(kOp, pred, grad, "grad");
  const auto math = op_math_type(pred.scalar_type());
  if (reduction == kNone) {
    FASTLOSS_CHECK(grad.sizes() == pred.sizes(), kOp, ": the gradient of \"none\" must have pred's shape");
    return as_contiguous(as_type(grad, math));
  }
  FASTLOSS_CHECK(grad.numel() == 1, kOp, ": the gradient of a reduced loss must have one element");
  return as_type(reshaped(grad, {}), math);
}

template <typename Kernels>
Tensor backward(const Tensor& grad, const Tensor& pred, const Tensor& target, const std::optional<Tensor>& weight,
                double alpha, double gamma, double beta, int64_t reduction) {
  const Tensors a = check(pred, target, weight, alpha, gamma, beta, reduction);
  const Tensor g = upstream_gradient(grad, a.pred, reduction);
  Tensor grad_pred = empty(a.pred.sizes(), options(a.pred));
  dispatch_floating(a.pred.scalar_type(), [&](auto type) {
    using scalar_t = typename decltype(type)::type;
    Kernels::template backward<scalar_t>(make_args<scalar_t>(a, alpha, gamma, beta), g, reduction, grad_pred, false);
  });
  return grad_pred;
}

// The backward of a forward that kept the gradient: kept (the forward's second output) becomes
// dL/dpred in place.
template <typename Kernels>
void backward_in_place(const Tensor& grad, Tensor& kept, const std::optional<Tensor>& weight, int64_t reduction) {
  FASTLOSS_CHECK_VALUE(kept.defined(), kOp, ": kept_grad is missing (None)");
  FASTLOSS_CHECK_VALUE(kept.scalar_type() == kFloat || kept.scalar_type() == kDouble, kOp,
                       ": kept_grad must be float32 or float64, got ", kept.scalar_type());
  FASTLOSS_CHECK_VALUE(kept.is_contiguous(), kOp, ": kept_grad must be contiguous (the forward's buffer)");
  FASTLOSS_CHECK(reduction >= kNone && reduction <= kMean, kOp, ": unknown reduction code ", reduction);
  const Tensor w = math_operand(kOp, kept, weight, "weight");
  if (w.defined())
    FASTLOSS_CHECK(w.sizes() == kept.sizes(), kOp, ": weight must have kept_grad's shape ", kept.sizes(), ", got ",
                   w.sizes());
  const Tensor g = upstream_gradient(grad, kept, reduction);
  const Tensors a{kept, kept, w.defined() ? as_contiguous(w) : w};
  dispatch_math(kept.scalar_type(), [&](auto type) {
    using scalar_t = typename decltype(type)::type;
    Kernels::template backward<scalar_t>(make_args<scalar_t>(a, 1.0, 1.0, 1.0), g, reduction, kept, true);
  });
}

}  // namespace fastloss::balanced_l1
