#pragma once
// Host side of fastloss::box_iou_loss (math: math/box_iou.h), shared by cpu/box_iou.cpp and
// cuda/box_iou.cu: argument checks, the kernels' arguments and the op's entry points.
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
  Tensor p, t, weight;
  std::vector<int64_t> loss_shape;  // pred.shape[:-1]
  int64_t pairs = 0;
  ScalarType math = kFloat;
};

inline Tensors check(const Tensor& pred, const Tensor& target, const std::optional<Tensor>& weight, int64_t kind,
                     int64_t mode, int64_t format, double eps, int64_t reduction, int64_t convention) {
  FASTLOSS_CHECK(is_floating(pred.scalar_type()), kOp, ": pred must be floating point, got ", pred.scalar_type());
  FASTLOSS_CHECK(pred.dim() >= 1 && pred.size(-1) == 4, kOp, ": pred must have shape (..., 4), got ", pred.sizes());
  FASTLOSS_CHECK(target.sizes() == pred.sizes(), kOp, ": target must have pred's shape ", pred.sizes(), ", got ",
                 target.sizes());
  FASTLOSS_CHECK(is_floating(target.scalar_type()), kOp, ": target must be floating point, got ", target.scalar_type());
  check_same_device(kOp, pred, target, "target");
  FASTLOSS_CHECK(kind >= kIoU && kind <= kBoundedIoU, kOp, ": unknown kind ", kind);
  FASTLOSS_CHECK(mode >= 0 && mode <= (kind == kBoundedIoU ? 3 : kSquare), kOp, ": unknown mode ", mode);
  FASTLOSS_CHECK(format >= kXYXY && format <= kCXCYWH, kOp, ": unknown box format ", format);
  FASTLOSS_CHECK(convention >= kTorchvision && convention <= kUltralytics, kOp, ": unknown convention ", convention);
  FASTLOSS_CHECK(eps >= 0, kOp, ": eps must be >= 0, got ", eps);
  FASTLOSS_CHECK(reduction >= kNone && reduction <= kMean, kOp, ": unknown reduction code ", reduction);
  Tensors a;
  a.p = as_contiguous(pred);
  a.t = as_contiguous(target);
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
  return Args<scalar_t, target_t>{
      a.p.const_data_ptr<scalar_t>(), a.t.const_data_ptr<target_t>(), row_operand<opmath_t>(a.weight), a.pairs,
      Params<opmath_t>{static_cast<int>(kind), static_cast<int>(mode), static_cast<int>(format),
                       static_cast<int>(convention), static_cast<opmath_t>(eps), static_cast<opmath_t>(gamma),
                       static_cast<opmath_t>(lambd), static_cast<opmath_t>(aux_eps < 0 ? eps : aux_eps),
                       classify_gamma(gamma)}};
}

// Entry points, registered by the CPU and CUDA files with their loops:
//   struct Kernels {
//     template <typename scalar_t, typename target_t> static void forward(const Args<scalar_t, target_t>&,
//         int64_t reduction, Tensor& loss);
//     template <typename scalar_t, typename target_t> static void backward(const Args<scalar_t, target_t>&,
//         const Tensor& grad, int64_t reduction, Tensor& grad_pred, Tensor& grad_target);
//   };                                                           // (either gradient may be empty: not wanted)
// The loss is in the math type (float32 for half inputs, as torchvision): pred.shape[:-1] for "none".
// grad_pred has pred's dtype, grad_target target's.
template <typename Kernels>
Tensor forward(const Tensor& pred, const Tensor& target, const std::optional<Tensor>& weight, int64_t kind,
               int64_t mode, int64_t format, double eps, double gamma, double lambd, int64_t reduction,
               int64_t convention, double aux_eps) {
  const Tensors a = check(pred, target, weight, kind, mode, format, eps, reduction, convention);
  const auto opts = options(a.p).with(a.math);
  Tensor loss = reduction == kNone ? empty(a.loss_shape, opts) : empty({}, opts);
  dispatch_pair(a.p.scalar_type(), a.t.scalar_type(), [&](auto p_type, auto t_type) {
    using scalar_t = typename decltype(p_type)::type;
    using target_t = typename decltype(t_type)::type;
    Kernels::template forward<scalar_t, target_t>(
        make_args<scalar_t, target_t>(a, kind, mode, format, eps, gamma, lambd, convention, aux_eps), reduction, loss);
  });
  return loss;
}

template <typename Kernels>
std::tuple<Tensor, Tensor> backward(const Tensor& grad, const Tensor& pred, const Tensor& target,
                                    const std::optional<Tensor>& weight, int64_t kind, int64_t mode, int64_t format,
                                    double eps, double gamma, double lambd, int64_t reduction, bool pred_grad,
                                    bool target_grad, int64_t convention, double aux_eps) {
  const Tensors a = check(pred, target, weight, kind, mode, format, eps, reduction, convention);
  check_same_device(kOp, a.p, grad, "grad");
  const auto math_type = a.math;
  Tensor g;
  if (reduction == kNone) {
    g = as_rows(as_type(grad, math_type), a.loss_shape, a.pairs, 1);
  } else {
    FASTLOSS_CHECK(grad.numel() == 1, kOp, ": the gradient of a reduced loss must have one element");
    g = as_type(reshaped(grad, {}), math_type);
  }
  Tensor gp = empty(pred_grad ? a.p.sizes() : IntArrayRef{0}, options(a.p));
  Tensor gt = empty(target_grad ? a.t.sizes() : IntArrayRef{0}, options(a.t));
  dispatch_pair(a.p.scalar_type(), a.t.scalar_type(), [&](auto p_type, auto t_type) {
    using scalar_t = typename decltype(p_type)::type;
    using target_t = typename decltype(t_type)::type;
    Kernels::template backward<scalar_t, target_t>(
        make_args<scalar_t, target_t>(a, kind, mode, format, eps, gamma, lambd, convention, aux_eps), g, reduction, gp,
        gt);
  });
  return {gp, gt};
}

}  // namespace fastloss::box_iou
