#pragma once
// Host side of fastloss::softmax_focal_loss (math: math/softmax_focal.h), shared by
// cpu/softmax_focal.cpp and cuda/softmax_focal.cu: argument checks, the kernels' arguments and the
// op's entry points. The input is (N, C, inner): inner = 1 for (N, C) logits (a position's classes
// are contiguous), the product of the spatial sizes for (N, C, *spatial) (classes `inner` apart).
// The kernels reduce "none" or "sum"; "mean" (÷ count or Σ α_y) is done by the Python layer.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <optional>
#include <tuple>
#include "common/reduction.h"
#include "math/softmax_focal.h"
#include "ops/tensor_args.h"

namespace fastloss::softmax_focal {

constexpr const char* kOp = "fastloss::softmax_focal_loss";

struct Tensors {
  at::Tensor x;       // (N, C, inner) logits, contiguous
  at::Tensor labels;  // (N, inner) int64
  at::Tensor alpha;   // (C,) in the math type, or undefined
  at::Tensor weight;  // (N, inner) in the math type, or undefined
};

// An optional float operand of exactly `shape`, contiguous in the math type (see math_operand).
inline at::Tensor optional_operand(const std::optional<at::Tensor>& t, const at::Tensor& x, at::IntArrayRef shape,
                                   const char* name) {
  const at::Tensor m = math_operand(kOp, x, t, name);
  if (!m.defined()) return m;
  TORCH_CHECK(m.sizes() == shape, kOp, ": ", name, " must have shape ", shape, ", got ", m.sizes());
  return m.contiguous();
}

inline Tensors check(const at::Tensor& input, const at::Tensor& target, const std::optional<at::Tensor>& alpha,
                     const std::optional<at::Tensor>& weight, double gamma, double label_smoothing,
                     int64_t reduction) {
  TORCH_CHECK(at::isFloatingType(input.scalar_type()), kOp, ": input must be floating point, got ",
              input.scalar_type());
  TORCH_CHECK(input.dim() == 3, kOp, ": input must be (N, C, inner), got ", input.sizes());
  TORCH_CHECK(gamma >= 0 && std::isfinite(gamma), kOp, ": gamma must be finite and >= 0, got ", gamma);
  TORCH_CHECK(label_smoothing >= 0 && label_smoothing <= 1, kOp, ": label_smoothing must be in [0, 1], got ",
              label_smoothing);
  TORCH_CHECK(reduction == kNone || reduction == kSum, kOp, ": the kernels reduce 'none' or 'sum' (code 0 or 1), got ",
              reduction);
  check_same_device(kOp, input, target, "target");
  TORCH_CHECK(at::isIntegralType(target.scalar_type(), false), kOp, ": target must be integer labels, got ",
              target.scalar_type());
  TORCH_CHECK(target.dim() == 2 && target.size(0) == input.size(0) && target.size(1) == input.size(2), kOp,
              ": target must be (N, inner) for input (N, C, inner), got ", target.sizes());
  Tensors a;
  a.x = input.contiguous();
  a.labels = target.to(at::kLong).contiguous();
  a.alpha = optional_operand(alpha, input, {input.size(1)}, "alpha");
  a.weight = optional_operand(weight, input, target.sizes(), "weight");
  return a;
}

template <typename scalar_t>
struct Args {
  using opmath_t = at::opmath_type<scalar_t>;
  const scalar_t* x;
  const int64_t* labels;
  const opmath_t* alpha;   // or nullptr: 1 for every class
  const opmath_t* weight;  // per position, or nullptr
  int64_t n, classes, inner, ignore_index;
  Params<opmath_t> prm;

  FASTLOSS_HD opmath_t alpha_of(int64_t c) const { return alpha == nullptr ? opmath_t(1) : alpha[c]; }
  FASTLOSS_HD opmath_t weight_of(int64_t position) const { return weight == nullptr ? opmath_t(1) : weight[position]; }
  // Position (n, i): its first logit, and the flat index n·inner + i of its label, weight and lse.
  FASTLOSS_HD const scalar_t* logits(int64_t position) const {
    const int64_t n_ = position / inner;
    return x + n_ * classes * inner + (position - n_ * inner);
  }
};

template <typename scalar_t>
inline Args<scalar_t> make_args(const Tensors& a, double gamma, double label_smoothing, int64_t ignore_index) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t classes = a.x.size(1);
  return Args<scalar_t>{a.x.const_data_ptr<scalar_t>(),
                        a.labels.const_data_ptr<int64_t>(),
                        a.alpha.defined() ? a.alpha.const_data_ptr<opmath_t>() : nullptr,
                        a.weight.defined() ? a.weight.const_data_ptr<opmath_t>() : nullptr,
                        a.x.size(0),
                        classes,
                        a.x.size(2),
                        ignore_index,
                        Params<opmath_t>{opmath_t(gamma), classify_gamma(gamma), opmath_t(1 - label_smoothing),
                                         opmath_t(classes > 0 ? label_smoothing / classes : 0), label_smoothing > 0}};
}

// Entry points, registered by the CPU and CUDA files with their loops:
//   struct Kernels {
//     template <typename scalar_t> static void forward(const Args<scalar_t>&, int64_t reduction,
//         at::Tensor& loss, at::Tensor& lse, at::Tensor& count);
//     template <typename scalar_t> static void backward(const Args<scalar_t>&, const at::Tensor& grad,
//         const at::Tensor& lse, at::Tensor& grad_input);   // grad: (N, inner) for "none", else 0-d
//   };
// loss: (N, inner) in the input's dtype (the math type with math_type_loss) for "none", else 0-d in
// the math type; lse: (N, inner) log-sum-exp per position in the math type, the one float per
// position the backward needs; count: positions not ignored.
template <typename Kernels>
std::tuple<at::Tensor, at::Tensor, at::Tensor> forward(const at::Tensor& input, const at::Tensor& target,
                                                       const std::optional<at::Tensor>& alpha,
                                                       const std::optional<at::Tensor>& weight, double gamma,
                                                       double label_smoothing, int64_t reduction,
                                                       int64_t ignore_index, bool math_type_loss) {
  const Tensors a = check(input, target, alpha, weight, gamma, label_smoothing, reduction);
  // A reduced loss stays in the math type: half's range could not hold a large sum before "mean"
  // divides it (the Python layer casts the result to the input's dtype). An unreduced one is in the
  // input's dtype, or in the math type with math_type_loss (autocast).
  const auto opmath = a.x.options().dtype(at::toOpMathType(a.x.scalar_type()));
  at::Tensor loss = reduction == kNone ? at::empty(a.labels.sizes(), math_type_loss ? opmath : a.x.options())
                                       : at::empty({}, opmath);
  at::Tensor lse = at::empty(a.labels.sizes(), opmath);
  at::Tensor count = at::zeros({}, a.x.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.x.scalar_type(), "softmax_focal_loss", [&] {
    Kernels::template forward<scalar_t>(make_args<scalar_t>(a, gamma, label_smoothing, ignore_index), reduction, loss,
                                        lse, count);
  });
  return {loss, lse, count};
}

template <typename Kernels>
at::Tensor backward(const at::Tensor& grad, const at::Tensor& input, const at::Tensor& target,
                    const std::optional<at::Tensor>& alpha, const std::optional<at::Tensor>& weight,
                    const at::Tensor& lse, double gamma, double label_smoothing, int64_t reduction,
                    int64_t ignore_index) {
  const Tensors a = check(input, target, alpha, weight, gamma, label_smoothing, reduction);
  const auto opmath = at::toOpMathType(a.x.scalar_type());
  check_same_device(kOp, a.x, grad, "grad");
  check_same_device(kOp, a.x, lse, "lse");
  TORCH_CHECK(lse.sizes() == a.labels.sizes() && lse.scalar_type() == opmath, kOp,
              ": lse must be the forward's (N, inner) log-sum-exp");
  TORCH_CHECK(reduction == kNone ? grad.sizes() == a.labels.sizes() : grad.numel() == 1, kOp,
              ": grad must have the loss's shape, got ", grad.sizes());
  const at::Tensor g = grad.to(opmath).contiguous(), l = lse.contiguous();
  at::Tensor grad_input = at::empty(a.x.sizes(), a.x.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.x.scalar_type(), "softmax_focal_loss_backward", [&] {
    Kernels::template backward<scalar_t>(make_args<scalar_t>(a, gamma, label_smoothing, ignore_index), g, l,
                                         grad_input);
  });
  return grad_input;
}

}  // namespace fastloss::softmax_focal
