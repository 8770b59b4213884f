#pragma once
// Host side of fastloss::box_iou_matrix (math: math/box_matrix.h), shared by cpu/box_matrix.cpp and
// cuda/box_matrix.cu: argument checks, the per-box fields both sets are first reduced to, the
// kernels' arguments and the op's entry points.
#include "math/box_matrix.h"
#include "ops/tensor_args.h"

namespace fastloss::box_matrix {

constexpr const char* kOp = "fastloss::box_iou_matrix";

// Codes of the output dtype (python/fastloss/box_matrix.py): 0 the math type.
inline ScalarType out_type(int64_t code, ScalarType math) {
  switch (code) {
    case 1: return kHalf;
    case 2: return kBFloat16;
    case 3: return kFloat;
    case 4: return kDouble;
    default: return math;
  }
}

// boxes1 (B, N, 4) and boxes2 (B, M, 4), checked; the math type of their promoted dtype.
struct Tensors {
  Tensor a, b;
  int64_t batch = 0, n = 0, m = 0;
  ScalarType math = kFloat;
};

inline Tensors check(const Tensor& boxes1, const Tensor& boxes2, int64_t kind, int64_t format, double eps,
                     int64_t convention, bool aligned, int64_t out_code) {
  check_same_device(kOp, boxes1, boxes2, "boxes2");
  for (const Tensor* t : {&boxes1, &boxes2}) {
    const char* name = t == &boxes1 ? "boxes1" : "boxes2";
    FASTLOSS_CHECK_VALUE(is_floating(t->scalar_type()), kOp, ": ", name, " must be floating point, got ",
                         t->scalar_type());
    FASTLOSS_CHECK_VALUE(t->dim() == 3 && t->size(2) == 4, kOp, ": ", name, " must have shape (B, N, 4), got ",
                         t->sizes());
  }
  FASTLOSS_CHECK_VALUE(boxes1.size(0) == boxes2.size(0), kOp, ": boxes1 and boxes2 must have the same batch size, got ",
                       boxes1.size(0), " and ", boxes2.size(0));
  FASTLOSS_CHECK_VALUE(!aligned || boxes1.size(1) == boxes2.size(1), kOp,
                       ": aligned pairs need as many boxes in boxes1 as in boxes2, got ", boxes1.size(1), " and ",
                       boxes2.size(1));
  FASTLOSS_CHECK_VALUE(kind >= kIoU && kind <= kIoF, kOp, ": unknown kind ", kind);
  FASTLOSS_CHECK_VALUE(
      convention == kTorchvision || (convention == kMmdet && (kind == kIoU || kind == kGIoU || kind == kIoF)), kOp,
      ": unknown convention ", convention, " for kind ", kind);
  FASTLOSS_CHECK_VALUE(format >= kXYXY && format <= kCXCYWH, kOp, ": unknown box format ", format);
  FASTLOSS_CHECK_VALUE(eps >= 0 && std::isfinite(eps), kOp, ": eps must be finite and >= 0, got ", eps);
  FASTLOSS_CHECK_VALUE(out_code >= 0 && out_code <= 4, kOp, ": unknown output dtype code ", out_code);
  Tensors t;
  t.a = as_contiguous(boxes1);
  t.b = as_contiguous(boxes2);
  t.batch = boxes1.size(0);
  t.n = boxes1.size(1);
  t.m = boxes2.size(1);
  t.math = pair_math_type(boxes1.scalar_type(), boxes2.scalar_type());
  return t;
}

// Both sets' fields (math/box_matrix.h), and the options of the pair kernels.
template <typename opmath_t>
struct Args {
  const opmath_t* fa;  // kFields × (batch · n): field f of box r at f · rows_a + r
  const opmath_t* fb;  // kFields × (batch · m)
  int64_t batch, n, m;
  bool aligned;  // pair i of boxes1 with pair i of boxes2 (n == m): a (batch, n) result
  int format;
  Params<opmath_t> prm;
};

// The incoming gradient of the (batch, n, m) result — or (batch, n) for aligned pairs, m = 0 — read
// through its strides: the column stride is 0 or 1, so the expanded ones of `.sum().backward()`
// are read without materialising an N × M tensor.
template <typename opmath_t>
struct GradView {
  const opmath_t* data;
  int64_t sb, sn, sm;
  FASTLOSS_HD const opmath_t* at(int64_t b, int64_t n, int64_t m) const { return data + b * sb + n * sn + m * sm; }
};

// Entry points, registered by the CPU and CUDA files with their loops:
//   struct Kernels {
//     template <typename scalar_t, typename opmath_t> static void fields(const Tensor& boxes, int format,
//         bool angle, Tensor& out);          // boxes (rows, 4) of scalar_t → out (kFields, rows)
//     template <typename opmath_t, typename out_t> static void forward(const Args<opmath_t>&, Tensor& out);
//     template <typename opmath_t> static void backward(const Args<opmath_t>&, const GradView<opmath_t>& grad,
//         Tensor& grad1, Tensor& grad2);      // in the math type; either may be empty (not wanted)
//   };
template <typename Kernels>
Tensor box_fields_of(const Tensor& boxes, ScalarType math, int64_t format, bool angle) {
  const int64_t rows = boxes.size(0) * boxes.size(1);
  Tensor out = empty({kFields, rows}, options(boxes).with(math));
  if (rows == 0) return out;
  dispatch_floating(boxes.scalar_type(), [&](auto s_type) {
    using scalar_t = typename decltype(s_type)::type;
    dispatch_math_from<scalar_t>(math, [&](auto m_type) {
      using opmath_t = typename decltype(m_type)::type;
      Kernels::template fields<scalar_t, opmath_t>(boxes, static_cast<int>(format), angle, out);
    });
  });
  return out;
}

template <typename Kernels, typename Fn>
void with_args(const Tensors& t, int64_t kind, int64_t format, double eps, int64_t convention, bool aligned,
               const Fn& fn) {
  const bool angle = kind == kCIoU;
  const Tensor fa = box_fields_of<Kernels>(t.a, t.math, format, angle);
  const Tensor fb = box_fields_of<Kernels>(t.b, t.math, format, angle);
  dispatch_math(t.math, [&](auto m_type) {
    using opmath_t = typename decltype(m_type)::type;
    fn(Args<opmath_t>{
        fa.const_data_ptr<opmath_t>(), fb.const_data_ptr<opmath_t>(), t.batch, t.n, t.m, aligned,
        static_cast<int>(format),
        Params<opmath_t>{static_cast<int>(kind), static_cast<int>(convention), static_cast<opmath_t>(eps)}});
  });
}

template <typename Kernels>
Tensor forward(const Tensor& boxes1, const Tensor& boxes2, int64_t kind, int64_t format, double eps, int64_t convention,
               bool aligned, int64_t out_code) {
  const Tensors t = check(boxes1, boxes2, kind, format, eps, convention, aligned, out_code);
  const Shape shape = aligned ? Shape{t.batch, t.n} : Shape{t.batch, t.n, t.m};
  Tensor out = empty(shape, options(t.a).with(out_type(out_code, t.math)));
  if (out.numel() == 0) return out;
  with_args<Kernels>(t, kind, format, eps, convention, aligned, [&](const auto& args) {
    using opmath_t = std::decay_t<decltype(*args.fa)>;
    dispatch_floating(out.scalar_type(), [&](auto o_type) {
      using out_t = typename decltype(o_type)::type;
      Kernels::template forward<opmath_t, out_t>(args, out);
    });
  });
  return out;
}

// The gradients of sum(grad · M) with respect to boxes1 and boxes2 (each summed over the other set),
// in the boxes' dtypes.
template <typename Kernels>
std::tuple<Tensor, Tensor> backward(const Tensor& grad, const Tensor& boxes1, const Tensor& boxes2, int64_t kind,
                                    int64_t format, double eps, int64_t convention, bool aligned, bool grad1_wanted,
                                    bool grad2_wanted) {
  const Tensors t = check(boxes1, boxes2, kind, format, eps, convention, aligned, 0);
  check_same_device(kOp, t.a, grad, "grad");
  const Shape shape = aligned ? Shape{t.batch, t.n} : Shape{t.batch, t.n, t.m};
  FASTLOSS_CHECK_VALUE(sizes(grad) == shape, kOp, ": grad must have the result's shape ", shape, ", got ",
                       grad.sizes());
  FASTLOSS_CHECK_VALUE(is_floating(grad.scalar_type()), kOp, ": grad must be floating point, got ", grad.scalar_type());
  Tensor g = as_type(grad, t.math);
  if (aligned || (g.stride(2) != 0 && g.stride(2) != 1)) g = as_contiguous(g);
  const auto opts = options(t.a).with(t.math);
  Tensor g1 = grad1_wanted ? zeros(t.a.sizes(), opts) : empty({0}, opts);
  Tensor g2 = grad2_wanted ? zeros(t.b.sizes(), opts) : empty({0}, opts);
  if (g.numel() > 0 && (grad1_wanted || grad2_wanted)) {
    with_args<Kernels>(t, kind, format, eps, convention, aligned, [&](const auto& args) {
      using opmath_t = std::decay_t<decltype(*args.fa)>;
      const GradView<opmath_t> view{g.const_data_ptr<opmath_t>(), g.stride(0), g.stride(1), aligned ? 0 : g.stride(2)};
      Kernels::backward(args, view, g1, g2);
    });
  }
  return {as_type(g1, boxes1.scalar_type()), as_type(g2, boxes2.scalar_type())};
}

}  // namespace fastloss::box_matrix
