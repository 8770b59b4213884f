#pragma once
// Host side of fastloss::softmax_focal_loss (math: math/softmax_focal.h), shared by
// cpu/softmax_focal.cpp and cuda/softmax_focal.cu: argument checks, the kernels' arguments and the
// op's entry points. The input is (N, C, inner): inner = 1 for (N, C) logits (a position's classes
// are contiguous), the product of the spatial sizes for (N, C, *spatial) (classes `inner` apart).
// The kernels reduce "none" or "sum"; "mean" (÷ count or Σ α_y) is done by the Python layer.
#include <optional>
#include <tuple>
#include "common/reduction.h"
#include "math/softmax_focal.h"
#include "ops/tensor_args.h"

namespace fastloss::softmax_focal {

constexpr const char* kOp = "fastloss::softmax_focal_loss";

struct Tensors {
  Tensor x;       // (N, C, inner) logits, contiguous
  Tensor labels;  // (N, inner) int64
  Tensor alpha;   // (C,) in the math type, or undefined
  Tensor weight;  // (N, inner) in the math type, or undefined
};

// An optional float operand of exactly `shape`, contiguous in the math type (see math_operand).
inline Tensor optional_operand(const std::optional<Tensor>& t, const Tensor& x, IntArrayRef shape, const char* name) {
  const Tensor m = math_operand(kOp, x, t, name);
  if (!m.defined()) return m;
  FASTLOSS_CHECK(m.sizes() == shape, kOp, ": ", name, " must have shape ", shape, ", got ", m.sizes());
  return as_contiguous(m);
}

inline Tensors check(const Tensor& input, const Tensor& target, const std::optional<Tensor>& alpha,
                     const std::optional<Tensor>& weight, double gamma, double label_smoothing, int64_t reduction) {
  FASTLOSS_CHECK(is_floating(input.scalar_type()), kOp, ": input must be floating point, got ", input.scalar_type());
  FASTLOSS_CHECK(input.dim() == 3, kOp, ": input must be (N, C, inner), got ", input.sizes());
  FASTLOSS_CHECK(gamma >= 0 && std::isfinite(gamma), kOp, ": gamma must be finite and >= 0, got ", gamma);
  FASTLOSS_CHECK(label_smoothing >= 0 && label_smoothing <= 1, kOp, ": label_smoothing must be in [0, 1], got ",
                 label_smoothing);
  FASTLOSS_CHECK(reduction == kNone || reduction == kSum, kOp,
                 ": the kernels reduce 'none' or 'sum' (code 0 or 1), got ", reduction);
  check_same_device(kOp, input, target, "target");
  FASTLOSS_CHECK(is_integral(target.scalar_type()), kOp, ": target must be integer labels, got ", target.scalar_type());
  FASTLOSS_CHECK(target.dim() == 2 && target.size(0) == input.size(0) && target.size(1) == input.size(2), kOp,
                 ": target must be (N, inner) for input (N, C, inner), got ", target.sizes());
  Tensors a;
  a.x = as_contiguous(input);
  a.labels = as_contiguous(as_type(target, kLong));
  a.alpha = optional_operand(alpha, input, {input.size(1)}, "alpha");
  a.weight = optional_operand(weight, input, target.sizes(), "weight");
  return a;
}

template <typename scalar_t>
struct Args {
  using opmath_t = math_type_t<scalar_t>;
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
  using opmath_t = math_type_t<scalar_t>;
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
//         Tensor& loss, Tensor& lse, Tensor& count);
//     template <typename scalar_t> static void backward(const Args<scalar_t>&, const Tensor& grad,
//         const Tensor& lse, Tensor& grad_input);   // grad: (N, inner) for "none", else 0-d
//   };
// loss: (N, inner) in the input's dtype (the math type with math_type_loss) for "none", else 0-d in
// the math type; lse: (N, inner) log-sum-exp per position in the math type, the one float per
// position the backward needs; count: positions not ignored.
template <typename Kernels>
std::tuple<Tensor, Tensor, Tensor> forward(const Tensor& input, const Tensor& target,
                                           const std::optional<Tensor>& alpha, const std::optional<Tensor>& weight,
                                           double gamma, double label_smoothing, int64_t reduction,
                                           int64_t ignore_index, bool math_type_loss) {
  const Tensors a = check(input, target, alpha, weight, gamma, label_smoothing, reduction);
  // A reduced loss stays in the math type: half's range could not hold a large sum before "mean"
  // divides it (the Python layer casts the result to the input's dtype). An unreduced one is in the
  // input's dtype, or in the math type with math_type_loss (autocast).
  const auto opmath = options(a.x).with(op_math_type(a.x.scalar_type()));
  Tensor loss =
      reduction == kNone ? empty(a.labels.sizes(), math_type_loss ? opmath : options(a.x)) : empty({}, opmath);
  Tensor lse = empty(a.labels.sizes(), opmath);
  Tensor count = zeros({}, options(a.x).with(kLong));
  dispatch_floating(a.x.scalar_type(), [&](auto type) {
    using scalar_t = typename decltype(type)::type;
    Kernels::template forward<scalar_t>(make_args<scalar_t>(a, gamma, label_smoothing, ignore_index), reduction, loss,
                                        lse, count);
  });
  return {loss, lse, count};
}

template <typename Kernels>
Tensor backward(const Tensor& grad, const Tensor& input, const Tensor& target, const std::optional<Tensor>& alpha,
                const std::optional<Tensor>& weight, const Tensor& lse, double gamma, double label_smoothing,
                int64_t reduction, int64_t ignore_index) {
  const Tensors a = check(input, target, alpha, weight, gamma, label_smoothing, reduction);
  const auto opmath = op_math_type(a.x.scalar_type());
  check_same_device(kOp, a.x, grad, "grad");
  check_same_device(kOp, a.x, lse, "lse");
  FASTLOSS_CHECK(lse.sizes() == a.labels.sizes() && lse.scalar_type() == opmath, kOp,
                 ": lse must be the forward's (N, inner) log-sum-exp");
  FASTLOSS_CHECK(reduction == kNone ? grad.sizes() == a.labels.sizes() : grad.numel() == 1, kOp,
                 ": grad must have the loss's shape, got ", grad.sizes());
  const Tensor g = as_contiguous(as_type(grad, opmath)), l = as_contiguous(lse);
  Tensor grad_input = empty(a.x.sizes(), options(a.x));
  dispatch_floating(a.x.scalar_type(), [&](auto type) {
    using scalar_t = typename decltype(type)::type;
    Kernels::template backward<scalar_t>(make_args<scalar_t>(a, gamma, label_smoothing, ignore_index), g, l,
                                         grad_input);
  });
  return grad_input;
}

}  // namespace fastloss::softmax_focal
