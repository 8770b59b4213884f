#pragma once
// An optional operand broadcast over a loss laid out as rows × cols (a weight, or the incoming
// gradient of an unreduced loss): element (r, c) is data[r * row_stride + c * col_stride].
// Broadcasting is a zero stride, so per-row and per-column operands need no copy.
// data == nullptr means the operand is absent (every element is 1).
#include <cstdint>
#include "common/host_device.h"

namespace fastloss {

template <typename T>
struct RowOperand {
  const T* data = nullptr;
  int64_t row_stride = 0;
  int64_t col_stride = 0;

  FASTLOSS_HD bool present() const { return data != nullptr; }
  FASTLOSS_HD const T* at(int64_t r, int64_t c) const { return data + r * row_stride + c * col_stride; }
  template <typename R>
  FASTLOSS_HD R value(int64_t r, int64_t c) const {
    return data != nullptr ? static_cast<R>(*at(r, c)) : R(1);
  }
};

}  // namespace fastloss
