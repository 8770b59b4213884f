#pragma once
// The only torch the kernels' host code sees: the LibTorch stable ABI (torch/csrc/stable,
// torch/headeronly) at TORCH_TARGET_VERSION 2.10 (set by setup.py and CMakeLists.txt), so one binary
// loads into every torch since 2.10. What the stable API lacks at that version is bridged here:
// dtype promotion and math types, a floating-dtype dispatch, checks with ATen's error types
// (std::runtime_error → RuntimeError, std::invalid_argument → ValueError), expand through the
// dispatcher, and printing of shapes, dtypes and devices for messages.
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Half.h>
#include <array>
#include <cmath>
#include <tuple>
#include <cstdint>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace fastloss {

using Tensor = torch::stable::Tensor;
using ScalarType = torch::headeronly::ScalarType;
using Device = torch::stable::Device;
using Shape = std::vector<int64_t>;
using IntArrayRef = torch::headeronly::IntHeaderOnlyArrayRef;
using Half = torch::headeronly::Half;
using BFloat16 = torch::headeronly::BFloat16;

constexpr ScalarType kHalf = ScalarType::Half;
constexpr ScalarType kBFloat16 = ScalarType::BFloat16;
constexpr ScalarType kFloat = ScalarType::Float;
constexpr ScalarType kDouble = ScalarType::Double;
constexpr ScalarType kLong = ScalarType::Long;

// ------------------------------------------------------------------------------ messages, checks

namespace detail {
inline void put(std::ostringstream& s, ScalarType t) { s << torch::headeronly::toString(t); }
inline void put(std::ostringstream& s, const Device& d) {
  s << (d.is_cuda() ? "cuda" : d.is_cpu() ? "cpu" : "device");
  if (d.is_cuda()) s << ':' << static_cast<int>(d.index());
}
inline void put(std::ostringstream& s, torch::headeronly::IntHeaderOnlyArrayRef a) {
  s << '[';
  for (size_t i = 0; i < a.size(); ++i) s << (i ? ", " : "") << a[i];
  s << ']';
}
inline void put(std::ostringstream& s, const Shape& a) { put(s, torch::headeronly::IntHeaderOnlyArrayRef(a)); }
template <typename T>
inline void put(std::ostringstream& s, const T& v) {
  s << v;
}
template <typename... Args>
std::string message(const Args&... args) {
  std::ostringstream s;
  (put(s, args), ...);
  return s.str();
}
}  // namespace detail

// FASTLOSS_CHECK: RuntimeError, as TORCH_CHECK; FASTLOSS_CHECK_VALUE: ValueError, as TORCH_CHECK_VALUE.
#define FASTLOSS_CHECK(cond, ...)                                                    \
  do {                                                                               \
    if (!(cond)) throw std::runtime_error(::fastloss::detail::message(__VA_ARGS__)); \
  } while (0)
#define FASTLOSS_CHECK_VALUE(cond, ...)                                                 \
  do {                                                                                  \
    if (!(cond)) throw std::invalid_argument(::fastloss::detail::message(__VA_ARGS__)); \
  } while (0)

// ---------------------------------------------------------------------------------------- dtypes

inline bool is_floating(ScalarType t) { return t == kHalf || t == kBFloat16 || t == kFloat || t == kDouble; }

inline bool is_integral(ScalarType t) {
  return t == ScalarType::Byte || t == ScalarType::Char || t == ScalarType::Short || t == ScalarType::Int ||
         t == kLong;  // (bool is not a label type)
}

// The math type of a floating dtype: float32 for the half types (ATen's opmath_type).
inline ScalarType op_math_type(ScalarType t) { return t == kHalf || t == kBFloat16 ? kFloat : t; }

template <typename T>
using math_type_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// torch.promote_types of two floating dtypes.
inline ScalarType promote_floating(ScalarType a, ScalarType b) {
  if (a == b) return a;
  if (a == kDouble || b == kDouble) return kDouble;
  return kFloat;  // float with a half type, or float16 with bfloat16
}

template <typename T>
constexpr ScalarType scalar_type_of = torch::headeronly::CppTypeToScalarType<T>::value;

template <typename T>
struct TypeTag {
  using type = T;
};

// fn(TypeTag<T>{}) with T the C++ type of a floating dtype.
template <typename Fn>
void dispatch_floating(ScalarType t, const Fn& fn) {
  switch (t) {
    case kFloat: return fn(TypeTag<float>{});
    case kDouble: return fn(TypeTag<double>{});
    case kHalf: return fn(TypeTag<Half>{});
    case kBFloat16: return fn(TypeTag<BFloat16>{});
    default: throw std::runtime_error(detail::message("fastloss: no kernel for dtype ", t));
  }
}

// The same for the math types only (float, double): tensors the kernels keep in the math type.
template <typename Fn>
void dispatch_math(ScalarType t, const Fn& fn) {
  if (t == kFloat) return fn(TypeTag<float>{});
  if (t == kDouble) return fn(TypeTag<double>{});
  throw std::runtime_error(detail::message("fastloss: expected float32 or float64, got ", t));
}

// dispatch_math for data of type scalar_t, whose math type can only be its own or wider (a double
// operand elsewhere promotes it): double data in float math is never compiled — no input reaches it.
template <typename scalar_t, typename Fn>
void dispatch_math_from(ScalarType t, const Fn& fn) {
  if (t == kDouble) return fn(TypeTag<double>{});
  if constexpr (!std::is_same_v<scalar_t, double>) {
    if (t == kFloat) return fn(TypeTag<float>{});
  }
  throw std::runtime_error(detail::message("fastloss: no ", t, " math for ", scalar_type_of<scalar_t>, " data"));
}

// Whether promoting an operand of type T with others (torch.promote_types over the floating dtypes)
// can give U: U is T itself, float32 (from anything but float64) or float64. Kernel variants for
// other pairs are never compiled.
template <typename T, typename U>
constexpr bool promotes_to =
    std::is_same_v<T, U> || std::is_same_v<U, double> || (std::is_same_v<U, float> && !std::is_same_v<T, double>);

// ------------------------------------------------------------------------------- tensor helpers

// Where and in which dtype a new tensor goes (the part of ATen's TensorOptions the kernels use).
struct Options {
  ScalarType dtype;
  Device device;
  Options with(ScalarType d) const { return {d, device}; }
};

inline Options options(const Tensor& t) { return {t.scalar_type(), t.device()}; }

inline Tensor empty(torch::headeronly::IntHeaderOnlyArrayRef shape, const Options& o) {
  return torch::stable::empty(shape, o.dtype, std::nullopt, o.device);
}

inline Tensor zeros(torch::headeronly::IntHeaderOnlyArrayRef shape, const Options& o) {
  Tensor t = empty(shape, o);
  torch::stable::zero_(t);
  return t;
}

inline Tensor as_type(const Tensor& t, ScalarType dtype) {
  return t.scalar_type() == dtype ? t : torch::stable::to(t, dtype);
}

inline Tensor as_contiguous(const Tensor& t) { return t.is_contiguous() ? t : torch::stable::contiguous(t); }

inline Tensor reshaped(const Tensor& t, torch::headeronly::IntHeaderOnlyArrayRef shape) {
  return torch::stable::reshape(t, shape);
}

// t.expand(shape): not in the stable API at 2.10, so through the dispatcher (a view; no copy).
// The caller checks broadcastability first: an error inside the call would lose its type.
inline Tensor expanded(const Tensor& t, torch::headeronly::IntHeaderOnlyArrayRef shape) {
  std::array<StableIValue, 3> stack{torch::stable::detail::from(t), torch::stable::detail::from(shape),
                                    torch::stable::detail::from(false)};
  STABLE_TORCH_ERROR_CODE_CHECK(torch_call_dispatcher("aten::expand", "", stack.data(), TORCH_ABI_VERSION));
  return torch::stable::detail::to<Tensor>(stack[0]);
}

inline Shape sizes(const Tensor& t) { return t.sizes().vec(); }

// True when `from` broadcasts to `to` (numpy rules, `from` not of higher rank).
inline bool broadcasts(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  for (size_t i = 0; i < from.size(); ++i) {
    const int64_t f = from[from.size() - 1 - i], t = to[to.size() - 1 - i];
    if (f != 1 && f != t) return false;
  }
  return true;
}

}  // namespace fastloss
