#pragma once
// Host side of fastloss::overlap_sums (math: math/overlap.h), shared by cpu/overlap.cpp and
// cuda/overlap.cu: argument checks, the kernels' arguments and the op's entry points.
#include <optional>
#include <tuple>
#include <vector>
#include "math/overlap.h"
#include "math/overlap_ce.h"
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
  FASTLOSS_CHECK(is_floating(input.scalar_type()), kOp, ": input must be floating point, got ", input.scalar_type());
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
  // The cross-entropy term of fastloss::overlap_ce_sums (math/overlap_ce.h; off for overlap_sums):
  // forward: per sample Σ loss and Σ w_y into ce_out (N, 2); backward: dL/d(Σ loss) per sample in
  // ce_grad (N,), and the logits (γ > 0 takes lse from them again; otherwise nullptr).
  CrossEntropy<opmath_t> ce{};
  opmath_t* ce_out = nullptr;
  const opmath_t* ce_grad = nullptr;
  const scalar_t* logits = nullptr;

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
// The loops' arguments of a call, with setup(args) adding what an op adds (the cross-entropy term).
struct NoSetup {
  template <typename A>
  void operator()(A&) const {}
};

template <typename Kernels, typename Setup = NoSetup>
std::tuple<Tensor, Tensor> forward_with(const Tensors& a, int64_t activation, bool squared,
                                        std::optional<int64_t> ignore_index, bool keep_probs, bool soft_label,
                                        const Setup& setup = {}) {
  FASTLOSS_CHECK(a.labels || !ignore_index.has_value(), kOp, ": ignore_index needs integer label targets");
  Tensor sums = empty({a.x.size(0), a.x.size(1), 3}, options(a.x).with(a.math));
  Tensor probs = empty(keep_probs ? a.x.sizes() : IntArrayRef({0}), options(a.x));
  dispatch_target(a.x, a.t, a.labels, [&](auto x_type, auto t_type) {
    using scalar_t = typename decltype(x_type)::type;
    using target_t = typename decltype(t_type)::type;
    auto args = make_args<scalar_t, target_t>(a, activation, squared, ignore_index, soft_label);
    setup(args);
    Kernels::template forward<scalar_t, target_t>(args, sums,
                                                  keep_probs ? probs.mutable_data_ptr<scalar_t>() : nullptr);
  });
  return {sums, probs};
}

template <typename Kernels>
std::tuple<Tensor, Tensor> forward(const Tensor& input, const Tensor& target, int64_t activation, bool squared,
                                   std::optional<int64_t> ignore_index, bool keep_probs, bool soft_label) {
  return forward_with<Kernels>(check(input, target, activation), activation, squared, ignore_index, keep_probs,
                               soft_label);
}

template <typename Kernels, typename Setup = NoSetup>
void backward_with(const Tensor& grad_sums, Tensor& probs, const Tensors& a, int64_t activation, bool squared,
                   std::optional<int64_t> ignore_index, bool soft_label, const Setup& setup = {}) {
  FASTLOSS_CHECK(probs.is_contiguous(), kOp, "_backward_: probs must be the contiguous buffer the forward wrote");
  check_same_device(kOp, a.x, grad_sums, "grad");
  FASTLOSS_CHECK(grad_sums.sizes() == IntArrayRef({a.x.size(0), a.x.size(1), 3}), kOp, ": grad must be (N, C, 3), got ",
                 grad_sums.sizes());
  const Tensor g = as_contiguous(as_type(grad_sums, a.math));
  dispatch_target(a.x, a.t, a.labels, [&](auto x_type, auto t_type) {
    using scalar_t = typename decltype(x_type)::type;
    using target_t = typename decltype(t_type)::type;
    auto args = make_args<scalar_t, target_t>(a, activation, squared, ignore_index, soft_label);
    setup(args);
    Kernels::template backward<scalar_t, target_t>(args, g, probs.mutable_data_ptr<scalar_t>());
  });
}

template <typename Kernels>
void backward(const Tensor& grad_sums, Tensor& probs, const Tensor& target, int64_t activation, bool squared,
              std::optional<int64_t> ignore_index, bool soft_label) {
  backward_with<Kernels>(grad_sums, probs, check(probs, target, activation), activation, squared, ignore_index,
                         soft_label);
}

// ---- fastloss::overlap_ce_sums: the sums and the cross-entropy term in one softmax pass --------
// (math/overlap_ce.h). Its third output ce is (N, 2): per sample Σ loss and Σ w_y over the kept
// positions (labels; for float targets the count of positions), in the math type.

constexpr const char* kCeOp = "fastloss::overlap_ce_sums";

// The term's options of a call (math/overlap_ce.h).
struct TermOptions {
  double gamma, label_smoothing;
  int64_t activation, term;
  double alpha;  // kSigmoidFocal's α (< 0: none)
  int64_t first_class;
};

inline Tensor check_cross_entropy(const Tensors& a, const std::optional<Tensor>& ce_weight, const TermOptions& o) {
  FASTLOSS_CHECK(o.term == kSoftmaxCe || o.term == kSigmoidFocal, kCeOp, ": unknown term ", o.term);
  FASTLOSS_CHECK(o.gamma >= 0, kCeOp, ": gamma must be >= 0, got ", o.gamma);
  if (o.term == kSoftmaxCe) {
    FASTLOSS_CHECK(o.activation == kSoftmax, kCeOp, ": the softmax cross entropy needs activation softmax");
    FASTLOSS_CHECK(a.x.size(1) > 1, kCeOp, ": the softmax cross entropy needs more than one class");
    FASTLOSS_CHECK(o.label_smoothing >= 0 && o.label_smoothing <= 1, kCeOp, ": label_smoothing must be in [0, 1], got ",
                   o.label_smoothing);
    FASTLOSS_CHECK(a.labels || o.gamma == 0, kCeOp, ": gamma > 0 needs integer label targets");
  } else {
    FASTLOSS_CHECK(o.label_smoothing == 0, kCeOp, ": the sigmoid focal term takes no label_smoothing");
    FASTLOSS_CHECK(o.alpha < 0 || o.alpha <= 1, kCeOp, ": alpha must be in [0, 1] (or negative: none), got ", o.alpha);
    FASTLOSS_CHECK(o.first_class >= 0 && o.first_class < a.x.size(1), kCeOp, ": first_class must be in [0, C), got ",
                   o.first_class);
  }
  const Tensor w = math_operand(kCeOp, a.x, ce_weight, "ce_weight", a.math);
  if (!w.defined()) return w;
  FASTLOSS_CHECK(w.dim() == 1 && w.size(0) == a.x.size(1), kCeOp, ": ce_weight must have one weight per class (",
                 a.x.size(1), "), got ", w.sizes());
  return as_contiguous(w);
}

// Sets the term's part of a call's Args.
struct CeSetup {
  const Tensor& weight;
  const TermOptions& o;
  Tensor* out;           // forward: (N, 2)
  const Tensor* grad;    // backward: (N, 2) in the math type (column 0 is read)
  const Tensor* logits;  // backward: read where the term's derivative needs the logits

  template <typename A>
  void operator()(A& args) const {
    using opmath_t = typename A::opmath_t;
    using scalar_t = std::remove_const_t<std::remove_pointer_t<decltype(args.x)>>;
    args.ce.on = true;
    args.ce.term = static_cast<int>(o.term);
    args.ce.weight = weight.defined() ? weight.const_data_ptr<opmath_t>() : nullptr;
    args.ce.keep = opmath_t(1 - o.label_smoothing);
    args.ce.spread = opmath_t(o.label_smoothing / static_cast<double>(args.classes));
    args.ce.gamma = opmath_t(o.gamma);
    args.ce.gamma_kind = classify_gamma(o.gamma);
    args.ce.focal = sigmoid_focal::make_params<opmath_t>(o.alpha, o.gamma);
    args.ce.first_class = o.first_class;
    if (out != nullptr) args.ce_out = out->mutable_data_ptr<opmath_t>();
    if (grad != nullptr) args.ce_grad = grad->const_data_ptr<opmath_t>();
    const bool needs_logits = o.term == kSigmoidFocal || o.gamma != 0;
    if (logits != nullptr && needs_logits) args.logits = logits->const_data_ptr<scalar_t>();
  }
};

template <typename Kernels>
std::tuple<Tensor, Tensor, Tensor> ce_forward(const Tensor& input, const Tensor& target,
                                              const std::optional<Tensor>& ce_weight, double gamma,
                                              double label_smoothing, bool squared, std::optional<int64_t> ignore_index,
                                              bool keep_probs, bool soft_label, int64_t activation, int64_t term,
                                              double alpha, int64_t first_class) {
  const TermOptions o{gamma, label_smoothing, activation, term, alpha, first_class};
  const Tensors a = check(input, target, activation);
  const Tensor w = check_cross_entropy(a, ce_weight, o);
  Tensor ce = empty({a.x.size(0), 2}, options(a.x).with(a.math));
  torch::stable::zero_(ce);  // (stays 0 where a kernel has no positions to add)
  auto [sums, probs] = forward_with<Kernels>(a, activation, squared, ignore_index, keep_probs, soft_label,
                                             CeSetup{w, o, &ce, nullptr, nullptr});
  return {sums, probs, ce};
}

template <typename Kernels>
void ce_backward(const Tensor& grad_sums, const Tensor& grad_ce, Tensor& probs, const Tensor& input,
                 const Tensor& target, const std::optional<Tensor>& ce_weight, double gamma, double label_smoothing,
                 bool squared, std::optional<int64_t> ignore_index, bool soft_label, int64_t activation, int64_t term,
                 double alpha, int64_t first_class) {
  const TermOptions o{gamma, label_smoothing, activation, term, alpha, first_class};
  const Tensors a = check(probs, target, activation);
  const Tensor w = check_cross_entropy(a, ce_weight, o);
  check_same_device(kCeOp, a.x, grad_ce, "grad_ce");
  check_same_device(kCeOp, a.x, input, "input");
  FASTLOSS_CHECK(grad_ce.sizes() == IntArrayRef({a.x.size(0), 2}), kCeOp, "_backward_: grad_ce must be (N, 2), got ",
                 grad_ce.sizes());
  FASTLOSS_CHECK(input.sizes() == probs.sizes() && input.scalar_type() == probs.scalar_type(), kCeOp,
                 "_backward_: input must be the forward's logits, of probs' shape and dtype");
  const Tensor g = as_contiguous(as_type(grad_ce, a.math));
  const Tensor logits = as_contiguous(input);
  backward_with<Kernels>(grad_sums, probs, a, activation, squared, ignore_index, soft_label,
                         CeSetup{w, o, nullptr, &g, &logits});
}

// ---- fastloss::overlap_score: the loss from the sums (math/overlap_score.h) -------------------
//   struct Kernels { template <typename S> static void scores(const Tensor& sums,
//       const Tensor& class_weight, const ScoreParams<S>&, Tensor* loss, const Tensor* grad,
//       Tensor* grad_sums); };   // one of loss / (grad, grad_sums), on the sums' device

template <typename S>
ScoreParams<S> make_score_params(int64_t loss, bool jaccard, double smooth_nr, double smooth_dr, double alpha,
                                 double beta, double gamma, bool include_background, bool batch, int64_t reduction) {
  return {
      static_cast<int>(loss), jaccard, S(smooth_nr), S(smooth_dr), S(alpha), S(beta), S(gamma), classify_gamma(gamma),
      include_background,     batch,   reduction};
}

inline Tensor check_scores(const Tensor& sums, const std::optional<Tensor>& class_weight, int64_t loss,
                           bool include_background, int64_t reduction) {
  constexpr const char* op = "fastloss::overlap_score";
  FASTLOSS_CHECK(
      sums.dim() == 3 && sums.size(2) == 3 && (sums.scalar_type() == kFloat || sums.scalar_type() == kDouble), op,
      ": sums must be a float32/float64 (N, C, 3) tensor, got ", sums.scalar_type(), " ", sums.sizes());
  FASTLOSS_CHECK(loss == kDice || loss == kTversky, op, ": unknown loss code ", loss);
  FASTLOSS_CHECK(reduction >= Reduction::kNone && reduction <= Reduction::kMean, op, ": unknown reduction code ",
                 reduction);
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
Tensor score_forward(const Tensor& sums, const std::optional<Tensor>& class_weight, int64_t loss, bool jaccard,
                     double smooth_nr, double smooth_dr, double alpha, double beta, double gamma,
                     bool include_background, bool batch, int64_t reduction) {
  const Tensor w = check_scores(sums, class_weight, loss, include_background, reduction);
  const Tensor s = as_contiguous(sums);
  Tensor out = empty(score_shape(s, include_background, batch, reduction), options(s));
  dispatch_math(s.scalar_type(), [&](auto type) {
    using scalar_t = typename decltype(type)::type;
    Kernels::template scores<scalar_t>(s, w,
                                       make_score_params<scalar_t>(loss, jaccard, smooth_nr, smooth_dr, alpha, beta,
                                                                   gamma, include_background, batch, reduction),
                                       &out, nullptr, nullptr);
  });
  return out;
}

template <typename Kernels>
Tensor score_backward(const Tensor& grad, const Tensor& sums, const std::optional<Tensor>& class_weight, int64_t loss,
                      bool jaccard, double smooth_nr, double smooth_dr, double alpha, double beta, double gamma,
                      bool include_background, bool batch, int64_t reduction) {
  const Tensor w = check_scores(sums, class_weight, loss, include_background, reduction);
  const Tensor s = as_contiguous(sums);
  check_same_device("fastloss::overlap_score_backward", s, grad, "grad");
  FASTLOSS_CHECK(grad.sizes() == IntArrayRef(score_shape(s, include_background, batch, reduction)),
                 "fastloss::overlap_score_backward: grad must have the loss's shape, got ", grad.sizes());
  const Tensor g = as_contiguous(as_type(grad, s.scalar_type()));
  Tensor grad_sums = empty(s.sizes(), options(s));
  dispatch_math(s.scalar_type(), [&](auto type) {
    using scalar_t = typename decltype(type)::type;
    Kernels::template scores<scalar_t>(s, w,
                                       make_score_params<scalar_t>(loss, jaccard, smooth_nr, smooth_dr, alpha, beta,
                                                                   gamma, include_background, batch, reduction),
                                       nullptr, &g, &grad_sums);
  });
  return grad_sums;
}

}  // namespace fastloss::overlap
