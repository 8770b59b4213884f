#pragma once
// Host side of fastloss::sigmoid_focal_loss (math: math/sigmoid_focal.h, and math/quality_focal.h for
// the varifocal and quality focal variants), shared by cpu/sigmoid_focal.cpp and
// cuda/sigmoid_focal.cu: argument checks and the kernels' arguments.
#include <optional>
#include "common/reduction.h"
#include "math/quality_focal.h"
#include "ops/tensor_args.h"

namespace fastloss::sigmoid_focal {

constexpr const char* kOp = "fastloss::sigmoid_focal_loss";

// One call's tensors, checked and laid out for the kernels. Float targets keep their own dtype.
struct Tensors {
  Tensor x;         // logits, contiguous, (..., C)
  Tensor t;         // float targets (contiguous, x's shape, any float dtype) or int64 labels (x.shape[:-1])
  Tensor weight;    // undefined, or a rows × cols view in the math type (see as_rows)
  Tensor scores;    // undefined, or with labels the label's target (the labels' shape, math type)
  Tensor positive;  // undefined, or the varifocal positive indicator of float targets (x's shape, math type)
  bool labels = false;
  ScalarType math = kFloat;  // the math type of x's and t's dtypes
  int64_t rows = 0, cols = 0;
  int64_t layers = 0;  // > 0: reduced per leading index (rows split evenly into `layers` slices)
};

inline Tensors check(const Tensor& inputs, const Tensor& targets, const std::optional<Tensor>& weight, double alpha,
                     double gamma, int64_t reduction, const std::optional<Tensor>& scores, int64_t variant,
                     const std::optional<Tensor>& positive, int64_t layers) {
  FASTLOSS_CHECK(is_floating(inputs.scalar_type()), kOp, ": inputs must be a floating point tensor, got ",
                 inputs.scalar_type());
  const int64_t kind = variant & kVariantMask;
  FASTLOSS_CHECK(kind <= kQualityFocal && variant >= 0 && variant < 64, kOp, ": unknown variant code ", variant);
  if (kind == kFocal) {
    FASTLOSS_CHECK((alpha >= 0 && alpha <= 1) || alpha == -1, kOp, ": alpha must be in [0, 1] or -1, got ", alpha);
  } else {
    FASTLOSS_CHECK(alpha >= 0 && std::isfinite(alpha), kOp, ": alpha must be finite and >= 0, got ", alpha);
  }
  FASTLOSS_CHECK(gamma >= 0 && std::isfinite(gamma), kOp, ": gamma must be finite and >= 0, got ", gamma);
  FASTLOSS_CHECK(reduction >= kNone && reduction <= kMean, kOp, ": unknown reduction code ", reduction);
  check_same_device(kOp, inputs, targets, "targets");
  Tensors a;
  a.x = as_contiguous(inputs);
  std::tie(a.rows, a.cols) = rows_cols(inputs);
  a.math = op_math_type(inputs.scalar_type());
  if (is_floating(targets.scalar_type())) {
    FASTLOSS_CHECK(targets.sizes() == inputs.sizes(), kOp, ": float targets must have the inputs' shape ",
                   inputs.sizes(), ", got ", targets.sizes());
    a.t = as_contiguous(targets);
    a.math = pair_math_type(inputs.scalar_type(), targets.scalar_type());
  } else {
    FASTLOSS_CHECK(is_integral(targets.scalar_type()), kOp,
                   ": targets must be floating point or integer class labels, got ", targets.scalar_type());
    FASTLOSS_CHECK(inputs.dim() >= 1 && targets.sizes() == inputs.sizes().slice(0, inputs.dim() - 1), kOp,
                   ": label targets must have shape inputs.shape[:-1], got ", targets.sizes(), " for inputs ",
                   inputs.sizes());
    a.t = as_contiguous(as_type(targets, kLong));
    a.labels = true;
  }
  a.weight = weight_rows(kOp, inputs, weight, inputs.sizes(), a.rows, a.cols, a.math);
  if (scores.has_value() && scores->defined()) {  // sparse soft targets: class `label` has target `score`
    FASTLOSS_CHECK_VALUE(a.labels, kOp, ": scores go with integer label targets only");
    check_same_device(kOp, inputs, *scores, "scores");
    FASTLOSS_CHECK_VALUE(is_floating(scores->scalar_type()) && scores->sizes() == targets.sizes(), kOp,
                         ": scores must be a floating tensor of the labels' shape ", targets.sizes(), ", got ",
                         scores->scalar_type(), " ", scores->sizes());
    a.scores = as_contiguous(as_type(*scores, a.math));
  }
  const bool label_mask = kind == kVarifocal && (variant & kLabelMask) != 0;
  if (positive.has_value() && positive->defined()) {
    FASTLOSS_CHECK_VALUE(label_mask && !a.labels, kOp,
                         ": a positive mask goes with varifocal's label mask and float targets only");
    check_same_device(kOp, inputs, *positive, "positive");
    FASTLOSS_CHECK_VALUE(positive->sizes() == inputs.sizes(), kOp, ": positive must have the inputs' shape ",
                         inputs.sizes(), ", got ", positive->sizes());
    a.positive = as_contiguous(as_type(*positive, a.math));
  } else {
    FASTLOSS_CHECK_VALUE(!label_mask || a.labels, kOp,
                         ": varifocal's label mask needs label targets or a positive mask");
  }
  FASTLOSS_CHECK(layers >= 0, kOp, ": layers must be >= 0, got ", layers);
  if (layers > 0 && reduction != kNone) {
    FASTLOSS_CHECK_VALUE(inputs.dim() >= 2 && inputs.size(0) == layers, kOp,
                         ": per-layer losses need inputs of "
                         "shape (layers, ..., C) with layers = ",
                         layers, ", got ", inputs.sizes());
    a.layers = layers;
  }
  return a;
}

// The dtype of an unreduced loss: the promoted dtype of the inputs and float targets — or, with
// math_type_loss (autocast), the math type. Either is the inputs' dtype or the math type.
inline ScalarType loss_dtype(const Tensors& a, bool math_type_loss) {
  if (math_type_loss) return a.math;
  return a.labels ? a.x.scalar_type() : promote_floating(a.x.scalar_type(), a.t.scalar_type());
}

// Everything a kernel reads, as plain pointers (passed by value to CUDA kernels): logits of
// scalar_t, float targets of target_t (target_t = scalar_t with labels), math in opmath_t.
template <typename scalar_t, typename target_t = scalar_t>
struct Args {
  using opmath_t = pair_math_t<scalar_t, target_t>;
  const scalar_t* x;
  const target_t* t;         // float targets, or nullptr
  const int64_t* labels;     // labels, or nullptr
  const opmath_t* scores;    // with labels: the label's target per row (1 when nullptr)
  const opmath_t* positive;  // varifocal label mask of float targets: m per element, or nullptr
  RowOperand<opmath_t> weight;
  int64_t rows, cols, ignore_index;
  bool ignoring;  // whether ignore_index applies (kNoIgnoreIndex: every label is a class or background)
  Params<opmath_t> prm;

  FASTLOSS_HD bool ignored(int64_t label) const { return ignoring && label == ignore_index; }

  // Slice l of a call reduced per layer (rows = the rows of one layer).
  FASTLOSS_HD Args layer(int64_t l) const {
    Args s = *this;
    const int64_t r = l * rows, e = r * cols;
    s.x += e;
    if (t != nullptr) s.t += e;
    if (labels != nullptr) s.labels += r;
    if (scores != nullptr) s.scores += r;
    if (positive != nullptr) s.positive += e;
    if (weight.present()) s.weight.data += r * weight.row_stride;
    return s;
  }
};

template <typename scalar_t, typename target_t>
inline Args<scalar_t, target_t> make_args(const Tensors& a, double alpha, double gamma, int64_t ignore_index,
                                          int64_t variant) {
  using opmath_t = pair_math_t<scalar_t, target_t>;
  return Args<scalar_t, target_t>{a.x.const_data_ptr<scalar_t>(),
                                  a.labels ? nullptr : a.t.const_data_ptr<target_t>(),
                                  a.labels ? a.t.const_data_ptr<int64_t>() : nullptr,
                                  a.scores.defined() ? a.scores.const_data_ptr<opmath_t>() : nullptr,
                                  a.positive.defined() ? a.positive.const_data_ptr<opmath_t>() : nullptr,
                                  row_operand<opmath_t>(a.weight),
                                  a.layers > 0 ? a.rows / a.layers : a.rows,
                                  a.cols,
                                  ignore_index,
                                  (variant & kNoIgnoreIndex) == 0,
                                  make_params<opmath_t>(alpha, gamma, static_cast<int>(variant))};
}

// The incoming gradient of the backward: for reduction "none" a rows × cols operand (any broadcast
// of the loss's shape) in the inputs' dtype or the math type — whichever it has (the loss's dtype),
// else converted to the math type; for a reduced loss a 0-d tensor in the math type.
inline Tensor check_grad(const Tensor& grad, const Tensors& a, int64_t reduction) {
  check_same_device(kOp, a.x, grad, "grad");
  if (reduction == kNone) {
    const auto type = grad.scalar_type() == a.x.scalar_type() ? a.x.scalar_type() : a.math;
    return as_rows(as_type(grad, type), a.x.sizes(), a.rows, a.cols);
  }
  if (a.layers > 0) {
    FASTLOSS_CHECK(grad.numel() == a.layers, kOp, ": the gradient of per-layer losses must have ", a.layers,
                   " elements, got ", grad.sizes());
    return as_contiguous(as_type(reshaped(grad, {a.layers}), a.math));
  }
  FASTLOSS_CHECK(grad.numel() == 1, kOp, ": the gradient of a reduced loss must have one element, got ", grad.sizes());
  return as_type(reshaped(grad, {}), a.math);
}

// The op's entry points, registered by the CPU and the CUDA file with their own loops:
//   struct Kernels {
//     template <typename scalar_t, typename target_t> static void forward(const Args<scalar_t, target_t>&,
//         int64_t layers, int64_t reduction, Tensor& loss, Tensor& count);
//     template <typename scalar_t, typename target_t, bool kGradT> static void backward(
//         const Args<scalar_t, target_t>&, int64_t layers, const Tensor& grad, const Tensor& count,
//         int64_t reduction, Tensor& gx, Tensor& gt);
//   };
// With layers > 0 (reduced losses only) the Args are one layer's (Args::layer), and loss, count and
// a reduced grad have one element per layer.
// forward returns the loss (the input's shape for "none", in scalar_t or the math type — see
// loss_dtype —, else 0-d in the math type) and `count`, the number of elements that were not
// ignored (the "mean" divisor; 0 for "none"), which backward takes back. backward's grad of "none"
// is in scalar_t or the math type (check_grad); gx has the inputs' dtype, gt the targets'.
template <typename Kernels>
std::tuple<Tensor, Tensor> forward(const Tensor& inputs, const Tensor& targets, const std::optional<Tensor>& weight,
                                   double alpha, double gamma, int64_t reduction, int64_t ignore_index,
                                   bool math_type_loss, const std::optional<Tensor>& scores, int64_t variant,
                                   const std::optional<Tensor>& positive, int64_t layers) {
  const Tensors a = check(inputs, targets, weight, alpha, gamma, reduction, scores, variant, positive, layers);
  // A reduced loss stays in the math type (the Python layer casts it after avg_factor divides: a
  // float16 sum can exceed float16's range before the division).
  Tensor loss = reduction == kNone ? empty(a.x.sizes(), options(a.x).with(loss_dtype(a, math_type_loss)))
                : a.layers > 0     ? empty({a.layers}, options(a.x).with(a.math))
                                   : empty({}, options(a.x).with(a.math));
  Tensor count = a.layers > 0 ? zeros({a.layers}, options(a.x).with(kLong)) : zeros({}, options(a.x).with(kLong));
  dispatch_target(a.x, a.t, a.labels, [&](auto x_type, auto t_type) {
    using scalar_t = typename decltype(x_type)::type;
    using target_t = typename decltype(t_type)::type;
    Kernels::template forward<scalar_t, target_t>(make_args<scalar_t, target_t>(a, alpha, gamma, ignore_index, variant),
                                                  a.layers, reduction, loss, count);
  });
  return {loss, count};
}

template <typename Kernels>
std::tuple<Tensor, Tensor> backward(const Tensor& grad, const Tensor& inputs, const Tensor& targets,
                                    const std::optional<Tensor>& weight, const Tensor& count, double alpha,
                                    double gamma, int64_t reduction, int64_t ignore_index, bool targets_grad,
                                    const std::optional<Tensor>& scores, int64_t variant,
                                    const std::optional<Tensor>& positive, int64_t layers) {
  const Tensors a = check(inputs, targets, weight, alpha, gamma, reduction, scores, variant, positive, layers);
  FASTLOSS_CHECK(!(targets_grad && a.labels), kOp, ": label targets have no gradient");
  FASTLOSS_CHECK(!(targets_grad && (variant & kVariantMask) != kFocal), kOp,
                 ": the varifocal and quality focal targets have no gradient");
  FASTLOSS_CHECK(count.numel() == std::max<int64_t>(a.layers, 1) && count.scalar_type() == kLong, kOp,
                 ": count must be one int64 per layer");
  check_same_device(kOp, a.x, count, "count");
  const Tensor g = check_grad(grad, a, reduction);
  Tensor gx = torch::stable::empty_like(a.x);
  Tensor gt = targets_grad ? torch::stable::empty_like(a.t) : empty({0}, options(a.x));
  dispatch_target(a.x, a.t, a.labels, [&](auto x_type, auto t_type) {
    using scalar_t = typename decltype(x_type)::type;
    using target_t = typename decltype(t_type)::type;
    const auto args = make_args<scalar_t, target_t>(a, alpha, gamma, ignore_index, variant);
    if (targets_grad) {
      Kernels::template backward<scalar_t, target_t, true>(args, a.layers, g, count, reduction, gx, gt);
    } else {
      Kernels::template backward<scalar_t, target_t, false>(args, a.layers, g, count, reduction, gx, gt);
    }
  });
  return {gx, gt};
}

}  // namespace fastloss::sigmoid_focal
