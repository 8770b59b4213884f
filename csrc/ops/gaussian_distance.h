#pragma once
// Host side of fastloss::gaussian_distance (math: math/gaussian_distance.h), shared by
// cpu/gaussian_distance.cpp and cuda/gaussian_distance.cu: argument checks, the kernels' arguments
// and the op's entry points. One loss per aligned pair of rows; nothing else is written.
#include "math/gaussian_distance.h"
#include "ops/tensor_args.h"

namespace fastloss::gaussian_distance {

constexpr const char* kOp = "fastloss::gaussian_distance";

template <typename S>
struct Args {
  const S* pred;
  const S* target;
  int64_t n;
  int representation;
  Params<S> params;
};

inline int fields(int64_t representation) { return representation == kXywhr ? kXywhrFields : kPearsonFields; }

inline void check(const Tensor& pred, const Tensor& target, int64_t representation, int64_t kind, int64_t fun,
                  double tau, double alpha, double beta, double eps) {
  check_same_device(kOp, pred, target, "target");
  FASTLOSS_CHECK_VALUE(representation == kXywhr || representation == kPearson, kOp,
                       ": representation must be 0 (x, y, w, h, cos, sin) or 1 (x, y, σx, σy, ρ), got ",
                       representation);
  FASTLOSS_CHECK_VALUE(kind >= kGwd && kind <= kKfiou, kOp, ": kind must be in [0, 5], got ", kind);
  const bool kf = kind == kKfiou;
  FASTLOSS_CHECK_VALUE(kf ? (fun == kFunNone || fun == kLn || fun == kExp) : (fun >= kFunNone && fun <= kSqrt), kOp,
                       ": fun ", fun, " is not one of kind ", kind, "'s");
  const ScalarType math = pred.scalar_type();
  const int width = fields(representation);
  for (const Tensor* t : {&pred, &target}) {
    const char* name = t == &pred ? "pred" : "target";
    FASTLOSS_CHECK_VALUE(t->scalar_type() == math && (math == kFloat || math == kDouble), kOp, ": ", name,
                         " must be float32 or float64 like pred, got ", t->scalar_type());
    FASTLOSS_CHECK_VALUE(t->dim() == 2 && t->size(1) == width, kOp, ": ", name, " must have shape (N, ", width,
                         "), got ", t->sizes());
  }
  FASTLOSS_CHECK_VALUE(pred.size(0) == target.size(0), kOp, ": pred and target must have as many rows, got ",
                       pred.size(0), " and ", target.size(0));
  for (double v : {tau, alpha, beta, eps})
    FASTLOSS_CHECK_VALUE(std::isfinite(v), kOp, ": tau, alpha, beta and eps must be finite, got ", v);
  FASTLOSS_CHECK_VALUE(alpha != 0, kOp, ": alpha must not be 0");
  FASTLOSS_CHECK_VALUE(beta > 0, kOp, ": beta must be > 0, got ", beta);
}

template <typename S>
inline Args<S> make_args(const Tensor& pred, const Tensor& target, int64_t representation, int64_t kind, int64_t fun,
                         double tau, double alpha, double beta, double eps, bool flag) {
  return Args<S>{pred.const_data_ptr<S>(), target.const_data_ptr<S>(), pred.size(0), static_cast<int>(representation),
                 Params<S>{static_cast<int>(kind), static_cast<int>(fun), static_cast<S>(tau), static_cast<S>(alpha),
                           static_cast<S>(beta), static_cast<S>(eps), flag}};
}

// Entry points, registered by the CPU and CUDA files:
//   struct Kernels {
//     template <int R, typename S> static void forward(const Args<S>&, Tensor& out);
//     // grad (N,); gp / gt (N, fields), either null when not wanted
//     template <int R, typename S> static void backward(const Args<S>&, const Tensor& grad, S* gp, S* gt);
//   };
template <typename Fn>
void dispatch_layout(int representation, const Fn& fn) {
  if (representation == kXywhr)
    fn(std::integral_constant<int, kXywhr>{});
  else
    fn(std::integral_constant<int, kPearson>{});
}

template <typename Kernels>
Tensor forward(const Tensor& pred, const Tensor& target, int64_t representation, int64_t kind, int64_t fun, double tau,
               double alpha, double beta, double eps, bool flag) {
  check(pred, target, representation, kind, fun, tau, alpha, beta, eps);
  const Tensor p = as_contiguous(pred), t = as_contiguous(target);
  Tensor out = empty({p.size(0)}, options(p));
  if (out.numel() == 0) return out;
  dispatch_math(p.scalar_type(), [&](auto m_type) {
    using S = typename decltype(m_type)::type;
    const Args<S> a = make_args<S>(p, t, representation, kind, fun, tau, alpha, beta, eps, flag);
    dispatch_layout(a.representation, [&](auto layout) { Kernels::template forward<decltype(layout)::value>(a, out); });
  });
  return out;
}

template <typename Kernels>
std::tuple<Tensor, Tensor> backward(const Tensor& grad, const Tensor& pred, const Tensor& target,
                                    int64_t representation, int64_t kind, int64_t fun, double tau, double alpha,
                                    double beta, double eps, bool flag, bool pred_grad, bool target_grad) {
  check(pred, target, representation, kind, fun, tau, alpha, beta, eps);
  check_same_device(kOp, pred, grad, "grad");
  const Shape want{pred.size(0)};
  FASTLOSS_CHECK_VALUE(grad.scalar_type() == pred.scalar_type() && sizes(grad) == want, kOp, ": grad must be ",
                       pred.scalar_type(), " of shape ", want, ", got ", grad.scalar_type(), " ", grad.sizes());
  const Tensor p = as_contiguous(pred), t = as_contiguous(target), g = as_contiguous(grad);
  Tensor gp = pred_grad ? empty(sizes(p), options(p)) : empty({0}, options(p));
  Tensor gt = target_grad ? empty(sizes(t), options(t)) : empty({0}, options(t));
  if (g.numel() == 0 || (!pred_grad && !target_grad)) return {gp, gt};
  dispatch_math(p.scalar_type(), [&](auto m_type) {
    using S = typename decltype(m_type)::type;
    const Args<S> a = make_args<S>(p, t, representation, kind, fun, tau, alpha, beta, eps, flag);
    dispatch_layout(a.representation, [&](auto layout) {
      Kernels::template backward<decltype(layout)::value>(a, g, pred_grad ? gp.mutable_data_ptr<S>() : nullptr,
                                                          target_grad ? gt.mutable_data_ptr<S>() : nullptr);
    });
  });
  return {gp, gt};
}

}  // namespace fastloss::gaussian_distance
