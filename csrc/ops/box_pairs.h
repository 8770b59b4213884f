#pragma once
// Host side shared by the ops over pairs of boxes (probiou, rotated_box_iou): every pair of two box
// sets (N, M) or the aligned pairs (N,), forward and backward, each box a row of Math::kFields values.
// Math (the op's formulas, math/<op>.h) gives
//   static constexpr int kFields;
//   template <typename V, typename S> static V value(const V (&p)[kFields], const V (&q)[kFields], S eps, S param);
//   template <typename V, typename S> static void gradient(p, q, S eps, S param, V g, V (&dp)[kFields], V
//   (&dq)[kFields]);
// (param: an op's second constant, for the ops whose schema has one; 0 for the others)
// (V: a scalar, or a CPU SIMD vector of pairs), and each backend file its loops (cpu/box_pairs.h,
// cuda/box_pairs.cuh) over them.
#include "ops/tensor_args.h"

namespace fastloss::box_pairs {

template <int kFields, typename S>
struct Args {
  const S* boxes1;
  const S* boxes2;
  int64_t n, m;
  bool aligned;
  S eps, param;

  FASTLOSS_HD int64_t pairs() const { return aligned ? n : n * m; }
  FASTLOSS_HD const S* first(int64_t i) const { return boxes1 + i * kFields; }
  FASTLOSS_HD const S* second(int64_t j) const { return boxes2 + j * kFields; }
};

inline void check(const char* op, int fields, const Tensor& boxes1, const Tensor& boxes2, double eps, bool aligned) {
  check_same_device(op, boxes1, boxes2, "boxes2");
  const ScalarType math = boxes1.scalar_type();
  for (const Tensor* t : {&boxes1, &boxes2}) {
    const char* name = t == &boxes1 ? "boxes1" : "boxes2";
    FASTLOSS_CHECK_VALUE(t->scalar_type() == math && (math == kFloat || math == kDouble), op, ": ", name,
                         " must be float32 or float64 like boxes1, got ", t->scalar_type());
    FASTLOSS_CHECK_VALUE(t->dim() == 2 && t->size(1) == fields, op, ": ", name, " must have shape (N, ", fields,
                         "), got ", t->sizes());
  }
  FASTLOSS_CHECK_VALUE(!aligned || boxes1.size(0) == boxes2.size(0), op,
                       ": aligned pairs need as many boxes in boxes1 as in boxes2, got ", boxes1.size(0), " and ",
                       boxes2.size(0));
  FASTLOSS_CHECK_VALUE(std::isfinite(eps) && eps > 0, op, ": eps must be finite and > 0, got ", eps);
}

template <int kFields, typename S>
inline Args<kFields, S> make_args(const Tensor& a, const Tensor& b, double eps, bool aligned, double param) {
  return Args<kFields, S>{a.const_data_ptr<S>(), b.const_data_ptr<S>(), a.size(0), b.size(0), aligned,
                          static_cast<S>(eps),   static_cast<S>(param)};
}

// The schema's name of an op's constant (Op::kParam; the ops without one pass 0).
template <typename Op>
constexpr const char* param_name() {
  if constexpr (requires { Op::kParam; })
    return Op::kParam;
  else
    return "param";
}

// The entry points: Op gives kOp (the schema name) and Math; Kernels<Math> the backend's loops:
//   template <typename S> static void forward(const Args<kFields, S>&, Tensor& out);
//   // grad: (N, M) or (N,); g1 (N, kFields) / g2 (M, kFields), either null when not wanted
//   template <typename S> static void backward(const Args<kFields, S>&, const Tensor& grad, S* g1, S* g2);
template <typename Op, template <typename> class Kernels>
Tensor forward_with(const Tensor& boxes1, const Tensor& boxes2, double eps, bool aligned, double param) {
  using Math = typename Op::Math;
  FASTLOSS_CHECK_VALUE(std::isfinite(param), Op::kOp, ": ", param_name<Op>(), " must be finite, got ", param);
  check(Op::kOp, Math::kFields, boxes1, boxes2, eps, aligned);
  const Tensor a = as_contiguous(boxes1), b = as_contiguous(boxes2);
  Tensor out = aligned ? empty({a.size(0)}, options(a)) : empty({a.size(0), b.size(0)}, options(a));
  if (out.numel() == 0) return out;
  dispatch_math(a.scalar_type(), [&](auto m_type) {
    using S = typename decltype(m_type)::type;
    Kernels<Math>::forward(make_args<Math::kFields, S>(a, b, eps, aligned, param), out);
  });
  return out;
}

template <typename Op, template <typename> class Kernels>
std::tuple<Tensor, Tensor> backward_with(const Tensor& grad, const Tensor& boxes1, const Tensor& boxes2, double eps,
                                         bool aligned, double param, bool boxes1_grad, bool boxes2_grad) {
  using Math = typename Op::Math;
  FASTLOSS_CHECK_VALUE(std::isfinite(param), Op::kOp, ": ", param_name<Op>(), " must be finite, got ", param);
  check(Op::kOp, Math::kFields, boxes1, boxes2, eps, aligned);
  check_same_device(Op::kOp, boxes1, grad, "grad");
  const Shape want = aligned ? Shape{boxes1.size(0)} : Shape{boxes1.size(0), boxes2.size(0)};
  FASTLOSS_CHECK_VALUE(grad.scalar_type() == boxes1.scalar_type() && sizes(grad) == want, Op::kOp, ": grad must be ",
                       boxes1.scalar_type(), " of shape ", want, ", got ", grad.scalar_type(), " ", grad.sizes());
  const Tensor a = as_contiguous(boxes1), b = as_contiguous(boxes2), g = as_contiguous(grad);
  // The kernels write every row of a gradient when there is any upstream element; zeros only without.
  const auto gradient = [&](const Tensor& boxes, bool wanted) {
    if (!wanted) return empty({0}, options(boxes));
    const Shape shape{boxes.size(0), Math::kFields};
    return g.numel() == 0 ? zeros(shape, options(boxes)) : empty(shape, options(boxes));
  };
  Tensor g1 = gradient(a, boxes1_grad), g2 = gradient(b, boxes2_grad);
  if (g.numel() == 0 || (!boxes1_grad && !boxes2_grad)) return {g1, g2};
  dispatch_math(a.scalar_type(), [&](auto m_type) {
    using S = typename decltype(m_type)::type;
    Kernels<Math>::backward(make_args<Math::kFields, S>(a, b, eps, aligned, param), g,
                            boxes1_grad ? g1.mutable_data_ptr<S>() : nullptr,
                            boxes2_grad ? g2.mutable_data_ptr<S>() : nullptr);
  });
  return {g1, g2};
}

// The schemas without a constant: (boxes1, boxes2, eps, aligned).
template <typename Op, template <typename> class Kernels>
Tensor forward(const Tensor& boxes1, const Tensor& boxes2, double eps, bool aligned) {
  return forward_with<Op, Kernels>(boxes1, boxes2, eps, aligned, 0.0);
}
template <typename Op, template <typename> class Kernels>
std::tuple<Tensor, Tensor> backward(const Tensor& grad, const Tensor& boxes1, const Tensor& boxes2, double eps,
                                    bool aligned, bool boxes1_grad, bool boxes2_grad) {
  return backward_with<Op, Kernels>(grad, boxes1, boxes2, eps, aligned, 0.0, boxes1_grad, boxes2_grad);
}

}  // namespace fastloss::box_pairs
