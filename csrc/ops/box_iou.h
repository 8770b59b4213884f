#pragma once
// Host side of fastloss::box_iou_loss (math: math/box_iou.h), shared by cpu/box_iou.cpp and
// cuda/box_iou.cu: argument checks, the kernels' arguments and the op's entry points.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <optional>
#include "common/reduction.h"
#include "math/box_iou.h"
#include "ops/tensor_args.h"

namespace fastloss::box_iou {

constexpr const char* kOp = "fastloss::box_iou_loss";

// One call's tensors, checked and laid out for the kernels: pred and target contiguous (..., 4),
// each in its own floating dtype, the weight as a per-pair operand (pairs × 1) in the math type (of
// their promoted dtype).
struct Tensors {
  at::Tensor p, t, weight;
  std::vector<int64_t> loss_shape;  // pred.shape[:-1]
  int64_t pairs = 0;
  at::ScalarType math = at::kFloat;
};

inline Tensors check(const at::Tensor& pred, const at::Tensor& target, const std::optional<at::Tensor>& weight,
                     int64_t kind, int64_t mode, int64_t format, double eps, int64_t reduction, int64_t convention) {
  TORCH_CHECK(at::isFloatingType(pred.scalar_type()), kOp, ": pred must be floating point, got ", pred.scalar_type());
  TORCH_CHECK(pred.dim() >= 1 && pred.size(-1) == 4, kOp, ": pred must have shape (..., 4), got ", pred.sizes());
  TORCH_CHECK(target.sizes() == pred.sizes(), kOp, ": target must have pred's shape ", pred.sizes(), ", got ",
              target.sizes());
  TORCH_CHECK(at::isFloatingType(target.scalar_type()), kOp, ": target must be floating point, got ",
              target.scalar_type());
  check_same_device(kOp, pred, target, "target");
  TORCH_CHECK(kind >= kIoU && kind <= kBoundedIoU, kOp, ": unknown kind ", kind);
  TORCH_CHECK(mode >= 0 && mode <= (kind == kBoundedIoU ? 3 : kSquare), kOp, ": unknown mode ", mode);
  TORCH_CHECK(format >= kXYXY && format <= kCXCYWH, kOp, ": unknown box format ", format);
  TORCH_CHECK(convention >= kTorchvision && convention <= kUltralytics, kOp, ": unknown convention ", convention);
  TORCH_CHECK(eps >= 0, kOp, ": eps must be >= 0, got ", eps);
  TORCH_CHECK(reduction >= kNone && reduction <= kMean, kOp, ": unknown reduction code ", reduction);
  Tensors a;
  a.p = pred.contiguous();
  a.t = target.contiguous();
  a.loss_shape = pred.sizes().slice(0, pred.dim() - 1).vec();
  a.pairs = pred.numel() / 4;
  a.math = pair_math_type(pred.scalar_type(), target.scalar_type());
  a.weight = weight_rows(kOp, pred, weight, a.loss_shape, a.pairs, 1, a.math);
  return a;
}

// pred of scalar_t, target of target_t, math in opmath_t (ops/tensor_args.h: pair_math_t).
template <typename scalar_t, typename target_t = scalar_t>
struct Args {
  using opmath_t = pair_math_t<scalar_t, target_t>;
  const scalar_t* p;
  const target_t* t;
  RowOperand<opmath_t> weight;  // per pair: element (i, 0)
  int64_t pairs;
  Params<opmath_t> prm;
};

template <typename scalar_t, typename target_t>
inline Args<scalar_t, target_t> make_args(const Tensors& a, int64_t kind, int64_t mode, int64_t format, double eps,
                                          double gamma, double lambd, int64_t convention, double aux_eps) {
  using opmath_t = pair_math_t<scalar_t, target_t>;
  return Args<scalar_t, target_t>{a.p.const_data_ptr<scalar_t>(), a.t.const_data_ptr<target_t>(),
                                  row_operand<opmath_t>(a.weight), a.pairs,
                                  Params<opmath_t>{static_cast<int>(kind), static_cast<int>(mode),
                                                   static_cast<int>(format), static_cast<int>(convention),
                                                   static_cast<opmath_t>(eps), static_cast<opmath_t>(gamma),
                                                   static_cast<opmath_t>(lambd),
                                                   static_cast<opmath_t>(aux_eps < 0 ? eps : aux_eps),
                                                   classify_gamma(gamma)}};
}

// Entry points, registered by the CPU and CUDA files with their loops:
//   struct Kernels {
//     template <typename scalar_t, typename target_t> static void forward(const Args<scalar_t, target_t>&,
//         int64_t reduction, at::Tensor& loss);
//     template <typename scalar_t, typename target_t> static void backward(const Args<scalar_t, target_t>&,
//         const at::Tensor& grad, int64_t reduction, at::Tensor& grad_pred, at::Tensor& grad_target);
//   };                                                           // (either gradient may be empty: not wanted)
// The loss is in the math type (float32 for half inputs, as torchvision): pred.shape[:-1] for "none".
// grad_pred has pred's dtype, grad_target target's.
template <typename Kernels>
at::Tensor forward(const at::Tensor& pred, const at::Tensor& target, const std::optional<at::Tensor>& weight,
                   int64_t kind, int64_t mode, int64_t format, double eps, double gamma, double lambd,
                   int64_t reduction, int64_t convention, double aux_eps) {
  const Tensors a = check(pred, target, weight, kind, mode, format, eps, reduction, convention);
  const auto options = a.p.options().dtype(a.math);
  at::Tensor loss = reduction == kNone ? at::empty(a.loss_shape, options) : at::empty({}, options);
  dispatch_pair(a.p.scalar_type(), a.t.scalar_type(), [&](auto p_type, auto t_type) {
    using scalar_t = typename decltype(p_type)::type;
    using target_t = typename decltype(t_type)::type;
    Kernels::template forward<scalar_t, target_t>(
        make_args<scalar_t, target_t>(a, kind, mode, format, eps, gamma, lambd, convention, aux_eps), reduction,
        loss);
  });
  return loss;
}

template <typename Kernels>
std::tuple<at::Tensor, at::Tensor> backward(const at::Tensor& grad, const at::Tensor& pred, const at::Tensor& target,
                                            const std::optional<at::Tensor>& weight, int64_t kind, int64_t mode,
                                            int64_t format, double eps, double gamma, double lambd, int64_t reduction,
                                            bool pred_grad, bool target_grad, int64_t convention, double aux_eps) {
  const Tensors a = check(pred, target, weight, kind, mode, format, eps, reduction, convention);
  check_same_device(kOp, a.p, grad, "grad");
  const auto math_type = a.math;
  at::Tensor g;
  if (reduction == kNone) {
    g = as_rows(grad.to(math_type), a.loss_shape, a.pairs, 1);
  } else {
    TORCH_CHECK(grad.numel() == 1, kOp, ": the gradient of a reduced loss must have one element");
    g = grad.reshape({}).to(math_type);
  }
  at::Tensor gp = at::empty(pred_grad ? a.p.sizes() : at::IntArrayRef{0}, a.p.options());
  at::Tensor gt = at::empty(target_grad ? a.t.sizes() : at::IntArrayRef{0}, a.t.options());
  dispatch_pair(a.p.scalar_type(), a.t.scalar_type(), [&](auto p_type, auto t_type) {
    using scalar_t = typename decltype(p_type)::type;
    using target_t = typename decltype(t_type)::type;
    Kernels::template backward<scalar_t, target_t>(
        make_args<scalar_t, target_t>(a, kind, mode, format, eps, gamma, lambd, convention, aux_eps), g, reduction,
        gp, gt);
  });
  return {gp, gt};
}

}  // namespace fastloss::box_iou
