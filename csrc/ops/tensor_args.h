#pragma once
// Host-side helpers shared by every op's CPU and CUDA entry points: the rows × cols view of a
// loss, broadcast operands without copies, and argument checks for direct torch.ops calls (the
// Python layer validates first and gives the friendlier messages).
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <optional>
#include <utility>
#include "common/row_operand.h"

namespace fastloss {

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

inline void check_same_device(const char* op, const at::Tensor& ref, const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device() == ref.device(), op, ": ", name, " is on ", t.device(), " but inputs are on ",
              ref.device());
}

// An optional float operand (weights, class weights), checked against `ref` (device, floating
// point) and converted to the math type of `ref`'s dtype; undefined when absent.
inline at::Tensor math_operand(const char* op, const at::Tensor& ref, const std::optional<at::Tensor>& t,
                               const char* name) {
  if (!t.has_value() || !t->defined()) return {};
  check_same_device(op, ref, *t, name);
  TORCH_CHECK(at::isFloatingType(t->scalar_type()), op, ": ", name, " must be floating point, got ", t->scalar_type());
  return t->to(at::toOpMathType(ref.scalar_type()));
}

// An optional weight as a rows × cols operand (see as_rows) in the math type; undefined when absent.
inline at::Tensor weight_rows(const char* op, const at::Tensor& ref, const std::optional<at::Tensor>& weight,
                              at::IntArrayRef shape, int64_t rows, int64_t cols) {
  const at::Tensor w = math_operand(op, ref, weight, "weight");
  return w.defined() ? as_rows(w, shape, rows, cols) : w;
}

}  // namespace fastloss
