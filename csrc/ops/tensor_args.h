#pragma once
// Host-side helpers shared by every op's CPU and CUDA entry points: the rows × cols view of a
// loss, broadcast operands without copies, and argument checks for direct torch.ops calls (the
// Python layer validates first and gives the friendlier messages).
#include <optional>
#include <type_traits>
#include <utility>
#include "common/loss_out.h"
#include "common/row_operand.h"
#include "common/stable_tensor.h"

namespace fastloss {

// Operands of different floating types (float16 logits with float32 targets, under AMP) are each
// read in their own type, and the math runs in the math type of their promoted type — as
// TensorIterator does, with no converted copy of either operand.
template <typename A, typename B>
using pair_math_t = std::conditional_t<std::is_same_v<A, double> || std::is_same_v<B, double>, double, float>;

inline ScalarType pair_math_type(ScalarType a, ScalarType b) { return op_math_type(promote_floating(a, b)); }

// fn(TypeTag<A>{}, TypeTag<B>{}) with A, B the C++ types of the floating dtypes a and b.
template <typename Fn>
void dispatch_pair(ScalarType a, ScalarType b, const Fn& fn) {
  dispatch_floating(a, [&](auto first) { dispatch_floating(b, [&](auto second) { fn(first, second); }); });
}

// The same for logits and a target that is either integer labels (one instantiation per logit
// dtype: fn(TypeTag<X>{}, TypeTag<X>{})) or a float tensor of its own dtype (one per pair).
template <typename Fn>
void dispatch_target(const Tensor& x, const Tensor& target, bool labels, const Fn& fn) {
  if (labels) {
    dispatch_floating(x.scalar_type(), [&](auto type) { fn(type, type); });
  } else {
    dispatch_pair(x.scalar_type(), target.scalar_type(), fn);
  }
}

// (rows, cols) of a tensor whose last dimension is the class/column axis; a 0-d tensor is 1 × 1.
inline std::pair<int64_t, int64_t> rows_cols(const Tensor& t) {
  const int64_t cols = t.dim() > 0 ? t.size(-1) : 1;
  return {cols > 0 ? t.numel() / cols : 0, cols};
}

// `t` broadcast to `shape` and viewed as rows × cols with a column stride of 0 or 1. Per-row,
// per-column and full operands are views; anything else is copied once.
inline Tensor as_rows(const Tensor& t, IntArrayRef shape, int64_t rows, int64_t cols) {
  FASTLOSS_CHECK(broadcasts(sizes(t), shape.vec()), "fastloss: an operand of shape ", t.sizes(),
                 " does not broadcast to the loss's shape ", shape);
  Tensor v = reshaped(expanded(t, shape), {rows, cols});
  if (cols > 1 && v.stride(1) != 0 && v.stride(1) != 1) v = as_contiguous(v);
  return v;
}

template <typename T>
inline RowOperand<T> row_operand(const Tensor& rows_view) {
  if (!rows_view.defined()) return {};
  return {rows_view.const_data_ptr<T>(), rows_view.stride(0), rows_view.size(1) > 1 ? rows_view.stride(1) : 0};
}

// The LossOut of an unreduced loss tensor (in scalar_t or opmath_t), or none (`unreduced` false).
template <typename scalar_t, typename opmath_t>
inline LossOut<scalar_t, opmath_t> loss_out(Tensor& loss, bool unreduced) {
  if (!unreduced) return {};
  if (loss.scalar_type() == scalar_type_of<scalar_t>) {
    return {loss.mutable_data_ptr<scalar_t>(), nullptr};
  }
  return {nullptr, loss.mutable_data_ptr<opmath_t>()};
}

inline void check_same_device(const char* op, const Tensor& ref, const Tensor& t, const char* name) {
  // (an undefined tensor — None passed to the raw op — has no device: asking the shim would throw
  // across its boundary and log a stack trace before the error arrives)
  FASTLOSS_CHECK_VALUE(ref.defined(), op, ": the input tensor is missing (None)");
  FASTLOSS_CHECK_VALUE(t.defined(), op, ": ", name, " is missing (None)");
  FASTLOSS_CHECK(t.device() == ref.device(), op, ": ", name, " is on ", t.device(), " but inputs are on ",
                 ref.device());
}

// An optional float operand (weights, class weights), checked against `ref` (device, floating
// point) and converted to `math` (default: the math type of `ref`'s dtype); undefined when absent.
inline Tensor math_operand(const char* op, const Tensor& ref, const std::optional<Tensor>& t, const char* name,
                           std::optional<ScalarType> math = std::nullopt) {
  if (!t.has_value() || !t->defined()) return {};
  check_same_device(op, ref, *t, name);
  FASTLOSS_CHECK(is_floating(t->scalar_type()), op, ": ", name, " must be floating point, got ", t->scalar_type());
  return as_type(*t, math.value_or(op_math_type(ref.scalar_type())));
}

// An optional weight as a rows × cols operand (see as_rows) in `math`; undefined when absent.
inline Tensor weight_rows(const char* op, const Tensor& ref, const std::optional<Tensor>& weight, IntArrayRef shape,
                          int64_t rows, int64_t cols, std::optional<ScalarType> math = std::nullopt) {
  const Tensor w = math_operand(op, ref, weight, "weight", math);
  return w.defined() ? as_rows(w, shape, rows, cols) : w;
}

}  // namespace fastloss
