#pragma once
// Host side of fastloss::overlap_sums (math: math/overlap.h), shared by cpu/overlap.cpp and
// cuda/overlap.cu: argument checks, the kernels' arguments and the op's entry points.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <optional>
#include <tuple>
#include <vector>
#include "math/overlap.h"
#include "math/overlap_score.h"
#include "ops/tensor_args.h"

namespace fastloss::overlap {

constexpr const char* kOp = "fastloss::overlap_sums";

struct Tensors {
  at::Tensor x;  // (N, C, HW) logits, contiguous
  at::Tensor t;  // (N, C, HW) float targets in their own dtype, or (N, HW) int64 labels
  bool labels = false;
  at::ScalarType math = at::kFloat;  // the math type (of x's and float t's dtypes)
};

inline Tensors check(const at::Tensor& input, const at::Tensor& target, int64_t activation) {
  TORCH_CHECK(at::isFloatingType(input.scalar_type()), kOp, ": input must be floating point, got ",
              input.scalar_type());
  TORCH_CHECK(input.dim() == 3, kOp, ": input must be (N, C, HW), got ", input.sizes());
  TORCH_CHECK(activation >= kSoftmax && activation <= kNone, kOp, ": unknown activation ", activation);
  check_same_device(kOp, input, target, "target");
  Tensors a;
  a.x = input.contiguous();
  a.math = at::toOpMathType(input.scalar_type());
  if (at::isFloatingType(target.scalar_type())) {
    TORCH_CHECK(target.sizes() == input.sizes(), kOp, ": float target must have the input's shape");
    a.t = target.contiguous();
    a.math = pair_math_type(input.scalar_type(), target.scalar_type());
  } else {
    TORCH_CHECK(at::isIntegralType(target.scalar_type(), false), kOp, ": target must be float or integer labels");
    TORCH_CHECK(target.dim() == 2 && target.size(0) == input.size(0) && target.size(1) == input.size(2), kOp,
                ": label target must be (N, HW) for input (N, C, HW), got ", target.sizes());
    a.t = target.to(at::kLong).contiguous();
    a.labels = true;
  }
  return a;
}

// Logits of scalar_t, float targets of target_t (= scalar_t with labels), math in opmath_t.
template <typename scalar_t, typename target_t = scalar_t>
struct Args {
  using opmath_t = pair_math_t<scalar_t, target_t>;
  const scalar_t* x;
  const target_t* t;      // float targets, or nullptr
  const int64_t* labels;  // labels, or nullptr
  int64_t n, classes, hw;
  int activation;
  bool squared;
  bool soft;  // S_pt = Σ min(p, t) (MONAI's soft_label; never with squared)
  bool has_ignore;
  int64_t ignore_index;
  // Class c is positive where label == c + label_offset: 0, except for one class, where the labels
  // are the binary target itself (1 = foreground), as MONAI takes them.
  int64_t label_offset;

  FASTLOSS_HD int64_t label_count() const { return classes + label_offset; }  // valid labels: [0, this)
};

template <typename scalar_t, typename target_t>
inline Args<scalar_t, target_t> make_args(const Tensors& a, int64_t activation, bool squared,
                                          std::optional<int64_t> ignore_index, bool soft_label) {
  const int64_t classes = a.x.size(1);
  return Args<scalar_t, target_t>{a.x.const_data_ptr<scalar_t>(),
                        a.labels ? nullptr : a.t.const_data_ptr<target_t>(),
                        a.labels ? a.t.const_data_ptr<int64_t>() : nullptr,
                        a.x.size(0),
                        classes,
                        a.x.size(2),
                        static_cast<int>(activation),
                        squared,
                        soft_label && !squared,  // with squared sums MONAI's soft tp is Σ p·t
                        ignore_index.has_value(),
                        ignore_index.value_or(0),
                        classes == 1 ? 1 : 0};
}

// Entry points, registered by the CPU and CUDA files with their loops:
//   struct Kernels {
//     template <typename scalar_t, typename target_t> static void forward(const Args<scalar_t, target_t>&,
//         at::Tensor& sums, scalar_t* probs);
//     template <typename scalar_t, typename target_t> static void backward(const Args<scalar_t, target_t>&,
//         const at::Tensor& grad_sums, scalar_t* probs);
//   };
// sums: (N, C, 3) in the math type — Σ p·t, Σ p (or p²), Σ t (or t²) per (sample, class).
// probs: the activated input p, (N, C, HW) in the input's dtype, written by the forward when
// keep_probs (else nullptr, and an empty tensor is returned). The backward turns it, in place, into
// dL/dinput: the gradient needs a buffer of that size anyway, and the backward then takes no exp.
template <typename Kernels>
std::tuple<at::Tensor, at::Tensor> forward(const at::Tensor& input, const at::Tensor& target, int64_t activation,
                                           bool squared, std::optional<int64_t> ignore_index, bool keep_probs,
                                           bool soft_label) {
  const Tensors a = check(input, target, activation);
  TORCH_CHECK(a.labels || !ignore_index.has_value(), kOp, ": ignore_index needs integer label targets");
  at::Tensor sums = at::empty({a.x.size(0), a.x.size(1), 3}, a.x.options().dtype(a.math));
  at::Tensor probs = at::empty(keep_probs ? a.x.sizes() : at::IntArrayRef({0}), a.x.options());
  dispatch_target(a.x, a.t, a.labels, [&](auto x_type, auto t_type) {
    using scalar_t = typename decltype(x_type)::type;
    using target_t = typename decltype(t_type)::type;
    Kernels::template forward<scalar_t, target_t>(
        make_args<scalar_t, target_t>(a, activation, squared, ignore_index, soft_label), sums,
        keep_probs ? probs.mutable_data_ptr<scalar_t>() : nullptr);
  });
  return {sums, probs};
}

template <typename Kernels>
void backward(const at::Tensor& grad_sums, at::Tensor& probs, const at::Tensor& target, int64_t activation,
              bool squared, std::optional<int64_t> ignore_index, bool soft_label) {
  const Tensors a = check(probs, target, activation);
  TORCH_CHECK(probs.is_contiguous(), kOp, "_backward_: probs must be the contiguous buffer the forward wrote");
  check_same_device(kOp, a.x, grad_sums, "grad");
  TORCH_CHECK(grad_sums.sizes() == at::IntArrayRef({a.x.size(0), a.x.size(1), 3}), kOp,
              ": grad must be (N, C, 3), got ", grad_sums.sizes());
  const at::Tensor g = grad_sums.to(a.math).contiguous();
  dispatch_target(a.x, a.t, a.labels, [&](auto x_type, auto t_type) {
    using scalar_t = typename decltype(x_type)::type;
    using target_t = typename decltype(t_type)::type;
    Kernels::template backward<scalar_t, target_t>(
        make_args<scalar_t, target_t>(a, activation, squared, ignore_index, soft_label), g,
        probs.mutable_data_ptr<scalar_t>());
  });
}

// ---- fastloss::overlap_score: the loss from the sums (math/overlap_score.h) -------------------
//   struct Kernels { template <typename S> static void scores(const at::Tensor& sums,
//       const at::Tensor& class_weight, const ScoreParams<S>&, at::Tensor* loss, const at::Tensor* grad,
//       at::Tensor* grad_sums); };   // one of loss / (grad, grad_sums), on the sums' device

template <typename S>
ScoreParams<S> make_score_params(int64_t loss, bool jaccard, double smooth_nr, double smooth_dr, double alpha,
                                 double beta, double gamma, bool include_background, bool batch, int64_t reduction) {
  return {static_cast<int>(loss), jaccard, S(smooth_nr), S(smooth_dr), S(alpha), S(beta), S(gamma),
          classify_gamma(gamma), include_background, batch, reduction};
}

inline at::Tensor check_scores(const at::Tensor& sums, const std::optional<at::Tensor>& class_weight, int64_t loss,
                               bool include_background, int64_t reduction) {
  constexpr const char* op = "fastloss::overlap_score";
  TORCH_CHECK(sums.dim() == 3 && sums.size(2) == 3 && (sums.scalar_type() == at::kFloat || sums.scalar_type() == at::kDouble),
              op, ": sums must be a float32/float64 (N, C, 3) tensor, got ", sums.scalar_type(), " ", sums.sizes());
  TORCH_CHECK(loss == kDice || loss == kTversky, op, ": unknown loss code ", loss);
  TORCH_CHECK(reduction >= Reduction::kNone && reduction <= Reduction::kMean, op, ": unknown reduction code ", reduction);
  TORCH_CHECK(include_background || sums.size(1) > 1, op, ": include_background=False needs more than one class");
  const at::Tensor w = math_operand(op, sums, class_weight, "class_weight");
  if (!w.defined()) return w;
  const int64_t scored = sums.size(1) - (include_background ? 0 : 1);
  TORCH_CHECK(w.dim() == 1 && w.size(0) == scored, op, ": class_weight must have one weight per scored class (",
              scored, "), got ", w.sizes());
  return w.contiguous();
}

inline std::vector<int64_t> score_shape(const at::Tensor& sums, bool include_background, bool batch, int64_t reduction) {
  if (reduction != Reduction::kNone) return {};
  const int64_t scored = sums.size(1) - (include_background ? 0 : 1);
  return batch ? std::vector<int64_t>{scored} : std::vector<int64_t>{sums.size(0), scored};
}

template <typename Kernels>
at::Tensor score_forward(const at::Tensor& sums, const std::optional<at::Tensor>& class_weight, int64_t loss,
                         bool jaccard, double smooth_nr, double smooth_dr, double alpha, double beta, double gamma,
                         bool include_background, bool batch, int64_t reduction) {
  const at::Tensor w = check_scores(sums, class_weight, loss, include_background, reduction);
  const at::Tensor s = sums.contiguous();
  at::Tensor out = at::empty(score_shape(s, include_background, batch, reduction), s.options());
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "overlap_score", [&] {
    Kernels::template scores<scalar_t>(s, w, make_score_params<scalar_t>(loss, jaccard, smooth_nr, smooth_dr, alpha,
        beta, gamma, include_background, batch, reduction), &out, nullptr, nullptr);
  });
  return out;
}

template <typename Kernels>
at::Tensor score_backward(const at::Tensor& grad, const at::Tensor& sums, const std::optional<at::Tensor>& class_weight,
                          int64_t loss, bool jaccard, double smooth_nr, double smooth_dr, double alpha, double beta,
                          double gamma, bool include_background, bool batch, int64_t reduction) {
  const at::Tensor w = check_scores(sums, class_weight, loss, include_background, reduction);
  const at::Tensor s = sums.contiguous();
  check_same_device("fastloss::overlap_score_backward", s, grad, "grad");
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(score_shape(s, include_background, batch, reduction)),
              "fastloss::overlap_score_backward: grad must have the loss's shape, got ", grad.sizes());
  const at::Tensor g = grad.to(s.scalar_type()).contiguous();
  at::Tensor grad_sums = at::empty(s.sizes(), s.options());
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "overlap_score_backward", [&] {
    Kernels::template scores<scalar_t>(s, w, make_score_params<scalar_t>(loss, jaccard, smooth_nr, smooth_dr, alpha,
        beta, gamma, include_background, batch, reduction), nullptr, &g, &grad_sums);
  });
  return grad_sums;
}

}  // namespace fastloss::overlap
