#pragma once
// Host side of fastloss::overlap_sums (math: math/overlap.h), shared by cpu/overlap.cpp and
// cuda/overlap.cu: argument checks, the kernels' arguments and the op's entry points.
#include <optional>
#include <tuple>
#include <vector>
#include "math/overlap.h"
#include "math/overlap_score.h"
#include "ops/tensor_args.h"

namespace fastloss::overlap {

constexpr const char* kOp = "fastloss::overlap_sums";

struct Tensors {
  Tensor x;  // (N, C, HW) logits, contiguous
  Tensor t;  // (N, C, HW) float targets in their own dtype, or (N, HW) int64 labels
  bool labels = false;
  ScalarType math = kFloat;  // the math type (of x's and float t's dtypes)
};

inline Tensors check(const Tensor& input, const Tensor& target, int64_t activation) {
  FASTLOSS_CHECK(is_floating(input.scalar_type()), kOp, ": input must be floating point, got ",
              input.scalar_type());
  FASTLOSS_CHECK(input.dim() == 3, kOp, ": input must be (N, C, HW), got ", input.sizes());
  FASTLOSS_CHECK(activation >= kSoftmax && activation <= kNone, kOp, ": unknown activation ", activation);
  check_same_device(kOp, input, target, "target");
  Tensors a;
  a.x = as_contiguous(input);
  a.math = op_math_type(input.scalar_type());
  if (is_floating(target.scalar_type())) {
    FASTLOSS_CHECK(target.sizes() == input.sizes(), kOp, ": float target must have the input's shape");
    a.t = as_contiguous(target);
    a.math = pair_math_type(input.scalar_type(), target.scalar_type());
  } else {
    FASTLOSS_CHECK(is_integral(target.scalar_type()), kOp, ": target must be float or integer labels");
    FASTLOSS_CHECK(target.dim() == 2 && target.size(0) == input.size(0) && target.size(1) == input.size(2), kOp,
                ": label target must be (N, HW) for input (N, C, HW), got ", target.sizes());
    a.t = as_contiguous(as_type(target, kLong));
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
//         Tensor& sums, scalar_t* probs);
//     template <typename scalar_t, typename target_t> static void backward(const Args<scalar_t, target_t>&,
//         const Tensor& grad_sums, scalar_t* probs);
//   };
// sums: (N, C, 3) in the math type — Σ p·t, Σ p (or p²), Σ t (or t²) per (sample, class).
// probs: the activated input p, (N, C, HW) in the input's dtype, written by the forward when
// keep_probs (else nullptr, and an empty tensor is returned). The backward turns it, in place, into
// dL/dinput: the gradient needs a buffer of that size anyway, and the backward then takes no exp.
template <typename Kernels>
std::tuple<Tensor, Tensor> forward(const Tensor& input, const Tensor& target, int64_t activation,
                                           bool squared, std::optional<int64_t> ignore_index, bool keep_probs,
                                           bool soft_label) {
  const Tensors a = check(input, target, activation);
  FASTLOSS_CHECK(a.labels || !ignore_index.has_value(), kOp, ": ignore_index needs integer label targets");
  Tensor sums = empty({a.x.size(0), a.x.size(1), 3}, options(a.x).with(a.math));
  Tensor probs = empty(keep_probs ? a.x.sizes() : IntArrayRef({0}), options(a.x));
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
void backward(const Tensor& grad_sums, Tensor& probs, const Tensor& target, int64_t activation,
              bool squared, std::optional<int64_t> ignore_index, bool soft_label) {
  const Tensors a = check(probs, target, activation);
  FASTLOSS_CHECK(probs.is_contiguous(), kOp, "_backward_: probs must be the contiguous buffer the forward wrote");
  check_same_device(kOp, a.x, grad_sums, "grad");
  FASTLOSS_CHECK(grad_sums.sizes() == IntArrayRef({a.x.size(0), a.x.size(1), 3}), kOp,
              ": grad must be (N, C, 3), got ", grad_sums.sizes());
  const Tensor g = as_contiguous(as_type(grad_sums, a.math));
  dispatch_target(a.x, a.t, a.labels, [&](auto x_type, auto t_type) {
    using scalar_t = typename decltype(x_type)::type;
    using target_t = typename decltype(t_type)::type;
    Kernels::template backward<scalar_t, target_t>(
        make_args<scalar_t, target_t>(a, activation, squared, ignore_index, soft_label), g,
        probs.mutable_data_ptr<scalar_t>());
  });
}

// ---- fastloss::overlap_score: the loss from the sums (math/overlap_score.h) -------------------
//   struct Kernels { template <typename S> static void scores(const Tensor& sums,
//       const Tensor& class_weight, const ScoreParams<S>&, Tensor* loss, const Tensor* grad,
//       Tensor* grad_sums); };   // one of loss / (grad, grad_sums), on the sums' device

template <typename S>
ScoreParams<S> make_score_params(int64_t loss, bool jaccard, double smooth_nr, double smooth_dr, double alpha,
                                 double beta, double gamma, bool include_background, bool batch, int64_t reduction) {
  return {static_cast<int>(loss), jaccard, S(smooth_nr), S(smooth_dr), S(alpha), S(beta), S(gamma),
          classify_gamma(gamma), include_background, batch, reduction};
}

inline Tensor check_scores(const Tensor& sums, const std::optional<Tensor>& class_weight, int64_t loss,
                               bool include_background, int64_t reduction) {
  constexpr const char* op = "fastloss::overlap_score";
  FASTLOSS_CHECK(sums.dim() == 3 && sums.size(2) == 3 && (sums.scalar_type() == kFloat || sums.scalar_type() == kDouble),
              op, ": sums must be a float32/float64 (N, C, 3) tensor, got ", sums.scalar_type(), " ", sums.sizes());
  FASTLOSS_CHECK(loss == kDice || loss == kTversky, op, ": unknown loss code ", loss);
  FASTLOSS_CHECK(reduction >= Reduction::kNone && reduction <= Reduction::kMean, op, ": unknown reduction code ", reduction);
  FASTLOSS_CHECK(include_background || sums.size(1) > 1, op, ": include_background=False needs more than one class");
  const Tensor w = math_operand(op, sums, class_weight, "class_weight");
  if (!w.defined()) return w;
  const int64_t scored = sums.size(1) - (include_background ? 0 : 1);
  FASTLOSS_CHECK(w.dim() == 1 && w.size(0) == scored, op, ": class_weight must have one weight per scored class (",
              scored, "), got ", w.sizes());
  return as_contiguous(w);
}

inline std::vector<int64_t> score_shape(const Tensor& sums, bool include_background, bool batch, int64_t reduction) {
  if (reduction != Reduction::kNone) return {};
  const int64_t scored = sums.size(1) - (include_background ? 0 : 1);
  return batch ? std::vector<int64_t>{scored} : std::vector<int64_t>{sums.size(0), scored};
}

template <typename Kernels>
Tensor score_forward(const Tensor& sums, const std::optional<Tensor>& class_weight, int64_t loss,
                         bool jaccard, double smooth_nr, double smooth_dr, double alpha, double beta, double gamma,
                         bool include_background, bool batch, int64_t reduction) {
  const Tensor w = check_scores(sums, class_weight, loss, include_background, reduction);
  const Tensor s = as_contiguous(sums);
  Tensor out = empty(score_shape(s, include_background, batch, reduction), options(s));
  dispatch_math(s.scalar_type(), [&](auto type) {
    using scalar_t = typename decltype(type)::type;
    Kernels::template scores<scalar_t>(s, w, make_score_params<scalar_t>(loss, jaccard, smooth_nr, smooth_dr, alpha,
        beta, gamma, include_background, batch, reduction), &out, nullptr, nullptr);
  });
  return out;
}

template <typename Kernels>
Tensor score_backward(const Tensor& grad, const Tensor& sums, const std::optional<Tensor>& class_weight,
                          int64_t loss, bool jaccard, double smooth_nr, double smooth_dr, double alpha, double beta,
                          double gamma, bool include_background, bool batch, int64_t reduction) {
  const Tensor w = check_scores(sums, class_weight, loss, include_background, reduction);
  const Tensor s = as_contiguous(sums);
  check_same_device("fastloss::overlap_score_backward", s, grad, "grad");
  FASTLOSS_CHECK(grad.sizes() == IntArrayRef(score_shape(s, include_background, batch, reduction)),
              "fastloss::overlap_score_backward: grad must have the loss's shape, got ", grad.sizes());
  const Tensor g = as_contiguous(as_type(grad, s.scalar_type()));
  Tensor grad_sums = empty(s.sizes(), options(s));
  dispatch_math(s.scalar_type(), [&](auto type) {
    using scalar_t = typename decltype(type)::type;
    Kernels::template scores<scalar_t>(s, w, make_score_params<scalar_t>(loss, jaccard, smooth_nr, smooth_dr, alpha,
        beta, gamma, include_background, batch, reduction), nullptr, &g, &grad_sums);
  });
  return grad_sums;
}

}  // namespace fastloss::overlap
