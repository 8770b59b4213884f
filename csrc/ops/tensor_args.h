#pragma once
// Host-side helpers shared by every op's CPU and CUDA entry points: the rows × cols view of a
// loss, broadcast operands without copies, and argument checks for direct torch.ops calls (the
// Python layer validates first and gives the friendlier messages).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <optional>
#include <type_traits>
#include <utility>
#include "common/loss_out.h"
#include "common/row_operand.h"

namespace fastloss {

// Operands of different floating types (float16 logits with float32 targets, under AMP) are each
// read in their own type, and the math runs in the math type of their promoted type — as
// TensorIterator does, with no converted copy of either operand.
template <typename A, typename B>
using pair_math_t = std::conditional_t<std::is_same_v<A, double> || std::is_same_v<B, double>, double, float>;

inline at::ScalarType pair_math_type(at::ScalarType a, at::ScalarType b) {
  return at::toOpMathType(at::promoteTypes(a, b));
}

template <typename T>
struct TypeTag {
  using type = T;
};

// fn(TypeTag<A>{}, TypeTag<B>{}) with A, B the C++ types of the floating dtypes a and b.
template <typename Fn>
void dispatch_pair(at::ScalarType a, at::ScalarType b, const Fn& fn) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a, "fastloss", [&] {
    using first_t = scalar_t;
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b, "fastloss",
                                    [&] { fn(TypeTag<first_t>{}, TypeTag<scalar_t>{}); });
  });
}

// The same for logits and a target that is either integer labels (one instantiation per logit
// dtype: fn(TypeTag<X>{}, TypeTag<X>{})) or a float tensor of its own dtype (one per pair).
template <typename Fn>
void dispatch_target(const at::Tensor& x, const at::Tensor& target, bool labels, const Fn& fn) {
  if (labels) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "fastloss",
                                    [&] { fn(TypeTag<scalar_t>{}, TypeTag<scalar_t>{}); });
  } else {
    dispatch_pair(x.scalar_type(), target.scalar_type(), fn);
  }
}

// (rows, cols) of a tensor whose last dimension is the class/column axis; a 0-d tensor is 1 × 1.
inline std::pair<int64_t, int64_t> rows_cols(const at::Tensor& t) {
  const int64_t cols = t.dim() > 0 ? t.size(-1) : 1;
  return {cols > 0 ? t.numel() / cols : 0, cols};
}

// `t` broadcast to `shape` and viewed as rows × cols with a column stride of 0 or 1. Per-row,
// per-column and full operands are views; anything else is copied once.
inline at::Tensor as_rows(const at::Tensor& t, at::IntArrayRef shape, int64_t rows, int64_t cols) {
  at::Tensor v = t.expand(shape).reshape({rows, cols});
  if (cols > 1 && v.stride(1) != 0 && v.stride(1) != 1) v = v.contiguous();
  return v;
}

template <typename T>
inline RowOperand<T> row_operand(const at::Tensor& rows_view) {
  if (!rows_view.defined()) return {};
  return {rows_view.const_data_ptr<T>(), rows_view.stride(0), rows_view.size(1) > 1 ? rows_view.stride(1) : 0};
}

// The LossOut of an unreduced loss tensor (in scalar_t or opmath_t), or none (`unreduced` false).
template <typename scalar_t, typename opmath_t>
inline LossOut<scalar_t, opmath_t> loss_out(at::Tensor& loss, bool unreduced) {
  if (!unreduced) return {};
  if (loss.scalar_type() == c10::CppTypeToScalarType<scalar_t>::value) {
    return {loss.mutable_data_ptr<scalar_t>(), nullptr};
  }
  return {nullptr, loss.mutable_data_ptr<opmath_t>()};
}

inline void check_same_device(const char* op, const at::Tensor& ref, const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device() == ref.device(), op, ": ", name, " is on ", t.device(), " but inputs are on ",
              ref.device());
}

// An optional float operand (weights, class weights), checked against `ref` (device, floating
// point) and converted to `math` (default: the math type of `ref`'s dtype); undefined when absent.
inline at::Tensor math_operand(const char* op, const at::Tensor& ref, const std::optional<at::Tensor>& t,
                               const char* name, std::optional<at::ScalarType> math = std::nullopt) {
  if (!t.has_value() || !t->defined()) return {};
  check_same_device(op, ref, *t, name);
  TORCH_CHECK(at::isFloatingType(t->scalar_type()), op, ": ", name, " must be floating point, got ", t->scalar_type());
  return t->to(math.value_or(at::toOpMathType(ref.scalar_type())));
}

// An optional weight as a rows × cols operand (see as_rows) in `math`; undefined when absent.
inline at::Tensor weight_rows(const char* op, const at::Tensor& ref, const std::optional<at::Tensor>& weight,
                              at::IntArrayRef shape, int64_t rows, int64_t cols,
                              std::optional<at::ScalarType> math = std::nullopt) {
  const at::Tensor w = math_operand(op, ref, weight, "weight", math);
  return w.defined() ? as_rows(w, shape, rows, cols) : w;
}

}  // namespace fastloss
