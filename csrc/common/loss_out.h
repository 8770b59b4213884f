#pragma once
// Where a kernel writes an unreduced loss: in the inputs' dtype (`narrow`) or in the math type
// (`wide`: float32 for half inputs, as torch's losses return under autocast). At most one is set;
// neither for a reduced loss.
#include <cstdint>
#include "common/host_device.h"

namespace fastloss {

template <typename scalar_t, typename opmath_t>
struct LossOut {
  scalar_t* narrow = nullptr;
  opmath_t* wide = nullptr;

  FASTLOSS_HD void store(int64_t i, opmath_t value) const {
    if (wide != nullptr) {
      wide[i] = value;
    } else if (narrow != nullptr) {
      narrow[i] = static_cast<scalar_t>(value);
    }
  }
};

}  // namespace fastloss
