#pragma once
// Host side of fastloss::prototype_mask_loss (math: math/mask_loss.h), shared by cpu/mask_loss.cpp
// and cuda/mask_loss.cu: argument checks, the kernels' arguments and the op's entry points.
//
// Per anchor (b, a) of a batch of B images × A anchors, K prototypes of H × W pixels:
//   coefficients (B, K, A)  the head's mask coefficients, in the head's layout (no transpose)
//   protos       (B, K, H, W), coefficients' dtype
//   target_masks overlap: (B, H, W), the anchor's target is the pixels equal to target_index + 1;
//                else (M, H, W), the anchor's target is row target_index; in the math type
//   target_index (B, A) int64;  boxes (B, A, 4) x1 y1 x2 y2 in pixels and areas (B, A), math type;
//   fg_mask      (B, A) bool: the anchors that have a loss (the others give 0)
// The loss is (B, A) in the math type; its backward gives the coefficients' and the prototypes'
// gradients, recomputed from the inputs (nothing of the masks' size is saved).
#include <tuple>
#include "math/mask_loss.h"
#include "ops/tensor_args.h"

namespace fastloss::mask_loss {

constexpr const char* kOp = "fastloss::prototype_mask_loss";
constexpr int64_t kMaxCoefficients = 64;  // the kernels keep one image's coefficients in registers

struct Tensors {
  Tensor coefficients, protos, target_masks, target_index, boxes, areas, fg_mask;
  bool overlap;
};

inline Tensors check(const Tensor& coefficients, const Tensor& protos, const Tensor& target_masks,
                     const Tensor& target_index, const Tensor& boxes, const Tensor& areas, const Tensor& fg_mask,
                     bool overlap) {
  check_same_device(kOp, coefficients, protos, "protos");
  check_same_device(kOp, coefficients, target_masks, "target_masks");
  check_same_device(kOp, coefficients, target_index, "target_index");
  check_same_device(kOp, coefficients, boxes, "boxes");
  check_same_device(kOp, coefficients, areas, "areas");
  check_same_device(kOp, coefficients, fg_mask, "fg_mask");
  const ScalarType dtype = coefficients.scalar_type(), math = op_math_type(dtype);
  FASTLOSS_CHECK(is_floating(dtype), kOp, ": coefficients must be floating point, got ", dtype);
  FASTLOSS_CHECK(coefficients.dim() == 3, kOp, ": coefficients must be (B, K, A), got ", coefficients.sizes());
  const int64_t batch = coefficients.size(0), k = coefficients.size(1), anchors = coefficients.size(2);
  FASTLOSS_CHECK(k <= kMaxCoefficients, kOp, ": at most ", kMaxCoefficients, " prototypes, got ", k);
  FASTLOSS_CHECK(protos.scalar_type() == dtype, kOp, ": protos must have the coefficients' dtype ", dtype, ", got ",
                 protos.scalar_type());
  FASTLOSS_CHECK(protos.dim() == 4 && protos.size(0) == batch && protos.size(1) == k, kOp,
                 ": protos must be (B, K, H, W) = (", batch, ", ", k, ", H, W), got ", protos.sizes());
  const int64_t h = protos.size(2), w = protos.size(3);
  FASTLOSS_CHECK(target_masks.scalar_type() == math, kOp, ": target_masks must be ", math, ", got ",
                 target_masks.scalar_type());
  FASTLOSS_CHECK(target_masks.dim() == 3 && target_masks.size(1) == h && target_masks.size(2) == w &&
                     (!overlap || target_masks.size(0) == batch),
                 kOp, ": target_masks must be ", overlap ? "(B, H, W)" : "(M, H, W)", " with (H, W) = (", h, ", ", w,
                 "), got ", target_masks.sizes());
  const Shape per_anchor{batch, anchors};
  FASTLOSS_CHECK(target_index.scalar_type() == kLong && sizes(target_index) == per_anchor, kOp,
                 ": target_index must be int64 of shape (B, A) = ", per_anchor, ", got ", target_index.scalar_type(),
                 " ", target_index.sizes());
  FASTLOSS_CHECK(fg_mask.scalar_type() == ScalarType::Bool && sizes(fg_mask) == per_anchor, kOp,
                 ": fg_mask must be bool of shape (B, A) = ", per_anchor, ", got ", fg_mask.scalar_type(), " ",
                 fg_mask.sizes());
  FASTLOSS_CHECK(boxes.scalar_type() == math && sizes(boxes) == (Shape{batch, anchors, 4}), kOp, ": boxes must be ",
                 math, " of shape (B, A, 4), got ", boxes.scalar_type(), " ", boxes.sizes());
  FASTLOSS_CHECK(areas.scalar_type() == math && sizes(areas) == per_anchor, kOp, ": areas must be ", math,
                 " of shape (B, A), got ", areas.scalar_type(), " ", areas.sizes());
  return {as_contiguous(coefficients), as_contiguous(protos), as_contiguous(target_masks), as_contiguous(target_index),
          as_contiguous(boxes),        as_contiguous(areas),  as_contiguous(fg_mask),      overlap};
}

template <typename scalar_t>
struct Args {
  using opmath_t = math_type_t<scalar_t>;
  const scalar_t* coefficients;  // (B, K, A)
  const scalar_t* protos;        // (B, K, H, W)
  const opmath_t* target_masks;  // (B or M, H, W)
  const int64_t* target_index;
  const opmath_t* boxes;
  const opmath_t* areas;
  const bool* fg_mask;
  int64_t batch, k, anchors, h, w, masks;  // masks: target_masks' rows
  bool overlap;

  FASTLOSS_HD int64_t pixels() const { return h * w; }
  FASTLOSS_HD const scalar_t* proto(int64_t b, int64_t j) const { return protos + (b * k + j) * h * w; }
  FASTLOSS_HD opmath_t coefficient(int64_t b, int64_t j, int64_t a) const {
    return static_cast<opmath_t>(coefficients[(b * k + j) * anchors + a]);
  }
  // Anchor p = b·A + a's target mask: the plane to read and the value it marks (overlap), or −1 for a
  // plain 0/1 (or soft) mask; false where its index names no mask.
  FASTLOSS_HD bool target(int64_t p, const opmath_t*& plane, opmath_t& marker) const {
    const int64_t i = target_index[p], b = p / anchors;
    if (overlap) {
      plane = target_masks + b * h * w;
      marker = static_cast<opmath_t>(i) + opmath_t(1);  // (not i + 1: no int64 overflow for any index)
      return i >= 0;
    }
    marker = opmath_t(-1);
    if (i < 0 || i >= masks) return false;  // (before the offset: no int64 overflow for any index)
    plane = target_masks + i * h * w;
    return true;
  }
  FASTLOSS_HD Span columns(int64_t p) const { return crop_span(boxes[p * 4], boxes[p * 4 + 2], w); }
  FASTLOSS_HD Span rows(int64_t p) const { return crop_span(boxes[p * 4 + 1], boxes[p * 4 + 3], h); }
  // L = Σ / (H·W) / area (ultralytics' mean over the mask, then / area); 0 for masks of no pixels
  FASTLOSS_HD opmath_t finish(int64_t p, opmath_t sum) const {
    return h * w == 0 ? opmath_t(0) : sum / static_cast<opmath_t>(h * w) / areas[p];
  }
};

template <typename scalar_t>
inline Args<scalar_t> make_args(const Tensors& a) {
  using opmath_t = math_type_t<scalar_t>;
  return Args<scalar_t>{a.coefficients.const_data_ptr<scalar_t>(),
                        a.protos.const_data_ptr<scalar_t>(),
                        a.target_masks.const_data_ptr<opmath_t>(),
                        a.target_index.const_data_ptr<int64_t>(),
                        a.boxes.const_data_ptr<opmath_t>(),
                        a.areas.const_data_ptr<opmath_t>(),
                        a.fg_mask.const_data_ptr<bool>(),
                        a.coefficients.size(0),
                        a.coefficients.size(1),
                        a.coefficients.size(2),
                        a.protos.size(2),
                        a.protos.size(3),
                        a.target_masks.size(0),
                        a.overlap};
}

// Entry points, registered by the CPU and CUDA files with their loops:
//   struct Kernels {
//     template <typename scalar_t> static void forward(const Args<scalar_t>&, math_type_t<scalar_t>* loss);
//     // upstream: (B, A) in the math type
//     template <typename scalar_t> static void backward(const Args<scalar_t>&, const math_type_t<scalar_t>* upstream,
//         scalar_t* grad_coefficients, scalar_t* grad_protos, const Tensor& like);  // like: where scratch goes
//   };
// An anchor whose target_index names no mask: an error on the CPU, a NaN loss (and no gradient) on
// CUDA, which cannot raise without waiting for the GPU.
template <typename Kernels>
Tensor forward(const Tensor& coefficients, const Tensor& protos, const Tensor& target_masks, const Tensor& target_index,
               const Tensor& boxes, const Tensor& areas, const Tensor& fg_mask, bool overlap) {
  const Tensors a = check(coefficients, protos, target_masks, target_index, boxes, areas, fg_mask, overlap);
  Tensor loss = empty(sizes(a.fg_mask), options(a.coefficients).with(op_math_type(a.coefficients.scalar_type())));
  if (loss.numel() == 0) return loss;
  dispatch_floating(a.coefficients.scalar_type(), [&](auto type) {
    using scalar_t = typename decltype(type)::type;
    Kernels::template forward<scalar_t>(make_args<scalar_t>(a), loss.mutable_data_ptr<math_type_t<scalar_t>>());
  });
  return loss;
}

template <typename Kernels>
std::tuple<Tensor, Tensor> backward(const Tensor& grad, const Tensor& coefficients, const Tensor& protos,
                                    const Tensor& target_masks, const Tensor& target_index, const Tensor& boxes,
                                    const Tensor& areas, const Tensor& fg_mask, bool overlap) {
  const Tensors a = check(coefficients, protos, target_masks, target_index, boxes, areas, fg_mask, overlap);
  check_same_device(kOp, coefficients, grad, "grad");
  FASTLOSS_CHECK(sizes(grad) == sizes(a.fg_mask), kOp, ": grad must have the loss's shape ", a.fg_mask.sizes(),
                 ", got ", grad.sizes());
  const Tensor g = as_contiguous(as_type(grad, op_math_type(a.coefficients.scalar_type())));
  Tensor grad_coefficients = empty(sizes(a.coefficients), options(a.coefficients));
  Tensor grad_protos = empty(sizes(a.protos), options(a.protos));
  dispatch_floating(a.coefficients.scalar_type(), [&](auto type) {
    using scalar_t = typename decltype(type)::type;
    Kernels::template backward<scalar_t>(make_args<scalar_t>(a), g.const_data_ptr<math_type_t<scalar_t>>(),
                                         grad_coefficients.mutable_data_ptr<scalar_t>(),
                                         grad_protos.mutable_data_ptr<scalar_t>(), g);
  });
  return {grad_coefficients, grad_protos};
}

}  // namespace fastloss::mask_loss
