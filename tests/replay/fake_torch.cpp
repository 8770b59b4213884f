// The part of torch's stable C shim that fastloss's CPU kernels call (nm -D --undefined-only of a
// _cpu_* module lists it), over plain buffers: tensors are sizes, strides and a byte storage; the few
// ATen ops the kernels dispatch (empty, empty_like, zero_, fill_, to, contiguous, reshape, expand,
// copy_) are written here; parallel_for runs on the calling thread; m.impl() records the boxed
// kernels in a table that replay.cpp calls. So the kernels' own object files run without libtorch:
// on aarch64 under qemu-user, where no torch can be installed (Makefile: aarch64-kernels).
#include "fake_torch.h"

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/stableivalue_conversions.h>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Half.h>

#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

struct AtenTensorOpaque {
  std::shared_ptr<replay::TensorData> t;  // null: an undefined tensor
};
struct StableListOpaque {
  std::vector<StableIValue> items;
};
class TorchLibraryOpaque {
 public:
  bool cpu_impl = false;
};

namespace replay {
namespace {

enum Code : int32_t {
  kU8 = 0,
  kI8 = 1,
  kI16 = 2,
  kI32 = 3,
  kI64 = 4,
  kF16 = 5,
  kF32 = 6,
  kF64 = 7,
  kBool = 11,
  kBF16 = 15
};
enum DeviceCode : int32_t { kCpu = 0, kCuda = 1, kMeta = 9, kXpu = 12, kMps = 13, kPrivateUse1 = 20 };

int64_t numel(const std::vector<int64_t>& sizes) {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  return n;
}

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& sizes) {
  std::vector<int64_t> strides(sizes.size());
  int64_t step = 1;
  for (size_t d = sizes.size(); d-- > 0;) {
    strides[d] = step;
    step *= std::max<int64_t>(sizes[d], 1);
  }
  return strides;
}

// Element i (row-major over the sizes) of t, as a double, and the store of one.
template <typename Fn>
void for_each_offset(const TensorData& t, const Fn& fn) {
  const int64_t n = numel(t.sizes), dims = static_cast<int64_t>(t.sizes.size());
  std::vector<int64_t> index(dims, 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t offset = t.offset;
    for (int64_t d = 0; d < dims; ++d) offset += index[d] * t.strides[d];
    fn(i, offset);
    for (int64_t d = dims - 1; d >= 0 && ++index[d] == t.sizes[d]; --d) index[d] = 0;
  }
}

double load(int32_t dtype, const uint8_t* p) {
  switch (dtype) {
    case kU8: return *p;
    case kI8: return *reinterpret_cast<const int8_t*>(p);
    case kI16: return *reinterpret_cast<const int16_t*>(p);
    case kI32: return *reinterpret_cast<const int32_t*>(p);
    case kI64: return static_cast<double>(*reinterpret_cast<const int64_t*>(p));
    case kF16: return static_cast<float>(*reinterpret_cast<const c10::Half*>(p));
    case kF32: return *reinterpret_cast<const float*>(p);
    case kF64: return *reinterpret_cast<const double*>(p);
    case kBool: return *p != 0;
    case kBF16: return static_cast<float>(*reinterpret_cast<const c10::BFloat16*>(p));
  }
  throw std::runtime_error("replay: dtype " + std::to_string(dtype) + " is not supported");
}

// As ATen's casts: to a half type through float (a float's value is exact in double).
void store(int32_t dtype, uint8_t* p, double v) {
  switch (dtype) {
    case kU8: *p = static_cast<uint8_t>(v); return;
    case kI8: *reinterpret_cast<int8_t*>(p) = static_cast<int8_t>(v); return;
    case kI16: *reinterpret_cast<int16_t*>(p) = static_cast<int16_t>(v); return;
    case kI32: *reinterpret_cast<int32_t*>(p) = static_cast<int32_t>(v); return;
    case kI64: *reinterpret_cast<int64_t*>(p) = static_cast<int64_t>(v); return;
    case kF16: *reinterpret_cast<c10::Half*>(p) = c10::Half(static_cast<float>(v)); return;
    case kF32: *reinterpret_cast<float*>(p) = static_cast<float>(v); return;
    case kF64: *reinterpret_cast<double*>(p) = v; return;
    case kBool: *p = v != 0; return;
    case kBF16: *reinterpret_cast<c10::BFloat16*>(p) = c10::BFloat16(static_cast<float>(v)); return;
  }
  throw std::runtime_error("replay: dtype " + std::to_string(dtype) + " is not supported");
}

// A new contiguous tensor; its bytes 0xFF (NaN in every float type), so that a value the kernel
// leaves unwritten differs from what torch's empty gave the recording only by chance.
std::shared_ptr<TensorData> allocate(int32_t dtype, const std::vector<int64_t>& sizes) {
  auto t = std::make_shared<TensorData>();
  t->dtype = dtype;
  t->sizes = sizes;
  t->strides = contiguous_strides(sizes);
  t->storage = std::make_shared<Storage>(static_cast<size_t>(numel(sizes) * element_size(dtype)), 0xFF);
  return t;
}

void copy_values(const TensorData& src, TensorData& dst) {
  std::vector<double> values(numel(src.sizes));
  const size_t in = element_size(src.dtype), out = element_size(dst.dtype);
  for_each_offset(src, [&](int64_t i, int64_t off) { values[i] = load(src.dtype, src.data() + off * in); });
  for_each_offset(dst, [&](int64_t i, int64_t off) { store(dst.dtype, dst.data() + off * out, values[i]); });
}

bool is_contiguous(const TensorData& t) {
  const std::vector<int64_t> want = contiguous_strides(t.sizes);
  for (size_t d = 0; d < t.sizes.size(); ++d)
    if (t.sizes[d] != 1 && t.strides[d] != want[d]) return false;
  return true;
}

std::shared_ptr<TensorData> contiguous(const std::shared_ptr<TensorData>& t) {
  if (is_contiguous(*t)) return t;
  auto out = allocate(t->dtype, t->sizes);
  copy_values(*t, *out);
  return out;
}

// The strides of t viewed with the given sizes, as ATen's reshape finds them (computeStride: a view
// whenever the sizes only split or merge dimensions that are laid out as one), or none: a copy.
std::optional<std::vector<int64_t>> view_strides(const TensorData& t, const std::vector<int64_t>& sizes) {
  std::vector<int64_t> old_sizes = t.sizes, old_strides = t.strides, strides(sizes.size());
  if (numel(old_sizes) == 0 || old_sizes.empty()) return contiguous_strides(sizes);
  int64_t view_d = static_cast<int64_t>(sizes.size()) - 1, base = old_strides.back(), tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_sizes.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_sizes[d];
    if (d == 0 || (old_sizes[d - 1] != 1 && old_strides[d - 1] != tensor_numel * base)) {
      while (view_d >= 0 && (view_numel < tensor_numel || sizes[view_d] == 1)) {
        strides[view_d] = view_numel * base;
        view_numel *= sizes[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        base = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return strides;
}

using torch::stable::Tensor;
namespace sd = torch::stable::detail;

std::shared_ptr<TensorData>& data(const Tensor& t) { return t.get()->t; }

Tensor handle(std::shared_ptr<TensorData> t) { return Tensor(new AtenTensorOpaque{std::move(t)}); }

int32_t dtype_code(torch::headeronly::ScalarType type) {
  return static_cast<int32_t>(type);  // (the shim's codes below are c10's)
}

// The ATen ops the kernels reach through torch_call_dispatcher, on this file's tensors.
void dispatch(const std::string& op, StableIValue* stack) {
  using torch::headeronly::ScalarType;
  if (op == "aten::empty_like") {
    const Tensor self = sd::to<Tensor>(stack[0]);
    const auto dtype = sd::to<std::optional<ScalarType>>(stack[1]);
    stack[0] = sd::from(handle(allocate(dtype ? dtype_code(*dtype) : data(self)->dtype, data(self)->sizes)));
  } else if (op == "aten::empty.memory_format") {
    const auto sizes = sd::to<std::vector<int64_t>>(stack[0]);
    const auto dtype = sd::to<std::optional<ScalarType>>(stack[1]);
    stack[0] = sd::from(handle(allocate(dtype ? dtype_code(*dtype) : kF32, sizes)));
  } else if (op == "aten::zero_") {
    const Tensor self = sd::to<Tensor>(stack[0]);
    TensorData& t = *data(self);
    for_each_offset(t, [&](int64_t, int64_t off) { store(t.dtype, t.data() + off * element_size(t.dtype), 0); });
    stack[0] = sd::from(self);
  } else if (op == "aten::to.dtype_layout") {
    const Tensor self = sd::to<Tensor>(stack[0]);
    const auto dtype = sd::to<std::optional<ScalarType>>(stack[1]);
    auto out = allocate(dtype ? dtype_code(*dtype) : data(self)->dtype, data(self)->sizes);
    copy_values(*data(self), *out);
    stack[0] = sd::from(handle(out));
  } else if (op == "aten::contiguous") {
    stack[0] = sd::from(handle(contiguous(data(sd::to<Tensor>(stack[0])))));
  } else if (op == "aten::reshape") {
    const Tensor self = sd::to<Tensor>(stack[0]);
    std::vector<int64_t> sizes = sd::to<std::vector<int64_t>>(stack[1]);
    int64_t known = 1, infer = -1;
    for (size_t d = 0; d < sizes.size(); ++d) sizes[d] < 0 ? infer = static_cast<int64_t>(d) : known *= sizes[d];
    if (infer >= 0) sizes[infer] = known == 0 ? 0 : numel(data(self)->sizes) / known;
    auto view = std::make_shared<TensorData>(*data(self));
    if (auto strides = view_strides(*view, sizes)) {
      view->strides = *strides;
    } else {
      view = contiguous(data(self));
      view->strides = contiguous_strides(sizes);
    }
    view->sizes = sizes;
    stack[0] = sd::from(handle(view));
  } else if (op == "aten::expand") {  // new leading dimensions and size-1 ones broadcast (stride 0)
    const Tensor self = sd::to<Tensor>(stack[0]);
    std::vector<int64_t> sizes = sd::to<std::vector<int64_t>>(stack[1]);
    auto view = std::make_shared<TensorData>(*data(self));
    const size_t lead = sizes.size() - view->sizes.size();
    std::vector<int64_t> strides(sizes.size(), 0);
    for (size_t d = lead; d < sizes.size(); ++d) {
      const int64_t old = view->sizes[d - lead];
      if (sizes[d] == -1) sizes[d] = old;
      strides[d] = old == sizes[d] ? view->strides[d - lead] : 0;
    }
    view->sizes = sizes;
    view->strides = strides;
    stack[0] = sd::from(handle(view));
  } else if (op == "aten::copy_") {
    const Tensor self = sd::to<Tensor>(stack[0]), src = sd::to<Tensor>(stack[1]);
    copy_values(*data(src), *data(self));
    stack[0] = sd::from(self);
  } else {
    throw std::runtime_error("replay: the kernels dispatched " + op + ", which fake_torch.cpp does not provide");
  }
}

}  // namespace

size_t element_size(int32_t dtype) {
  switch (dtype) {
    case kU8:
    case kI8:
    case kBool: return 1;
    case kI16:
    case kF16:
    case kBF16: return 2;
    case kI32:
    case kF32: return 4;
    case kI64:
    case kF64: return 8;
  }
  throw std::runtime_error("replay: dtype " + std::to_string(dtype) + " is not supported");
}

std::map<std::string, BoxedKernel>& kernels() {
  static std::map<std::string, BoxedKernel> table;
  return table;
}

StableIValue tensor_value(std::shared_ptr<TensorData> t) { return sd::from(handle(std::move(t))); }

std::shared_ptr<TensorData> tensor_of(StableIValue v) { return data(sd::to<Tensor>(v)); }

std::vector<double> values(const TensorData& t) {
  std::vector<double> out(numel(t.sizes));
  for_each_offset(t, [&](int64_t i, int64_t off) { out[i] = load(t.dtype, t.data() + off * element_size(t.dtype)); });
  return out;
}

std::vector<uint8_t> bytes(const TensorData& t) {
  const size_t size = element_size(t.dtype);
  std::vector<uint8_t> out(numel(t.sizes) * size);
  for_each_offset(t, [&](int64_t i, int64_t off) { std::memcpy(out.data() + i * size, t.data() + off * size, size); });
  return out;
}

}  // namespace replay

using replay::TensorData;

#define FAKE_OK(body)          \
  do {                         \
    body;                      \
    return AOTI_TORCH_SUCCESS; \
  } while (0)

extern "C" {
uint64_t aoti_torch_abi_version() { return TORCH_ABI_VERSION; }

int32_t aoti_torch_dtype_uint8() { return replay::kU8; }
int32_t aoti_torch_dtype_int8() { return replay::kI8; }
int32_t aoti_torch_dtype_int16() { return replay::kI16; }
int32_t aoti_torch_dtype_int32() { return replay::kI32; }
int32_t aoti_torch_dtype_int64() { return replay::kI64; }
int32_t aoti_torch_dtype_float16() { return replay::kF16; }
int32_t aoti_torch_dtype_float32() { return replay::kF32; }
int32_t aoti_torch_dtype_float64() { return replay::kF64; }
int32_t aoti_torch_dtype_complex32() { return 8; }
int32_t aoti_torch_dtype_complex64() { return 9; }
int32_t aoti_torch_dtype_complex128() { return 10; }
int32_t aoti_torch_dtype_bool() { return replay::kBool; }
int32_t aoti_torch_dtype_bfloat16() { return replay::kBF16; }
int32_t aoti_torch_dtype_float8_e5m2() { return 23; }
int32_t aoti_torch_dtype_float8_e4m3fn() { return 24; }
int32_t aoti_torch_dtype_float8_e5m2fnuz() { return 25; }
int32_t aoti_torch_dtype_float8_e4m3fnuz() { return 26; }
int32_t aoti_torch_dtype_uint16() { return 27; }
int32_t aoti_torch_dtype_uint32() { return 28; }
int32_t aoti_torch_dtype_uint64() { return 29; }

int32_t aoti_torch_device_type_cpu() { return replay::kCpu; }
int32_t aoti_torch_device_type_cuda() { return replay::kCuda; }
int32_t aoti_torch_device_type_meta() { return replay::kMeta; }
int32_t aoti_torch_device_type_xpu() { return replay::kXpu; }
int32_t aoti_torch_device_type_mps() { return replay::kMps; }
int32_t aoti_torch_device_type_privateuse1() { return replay::kPrivateUse1; }

// (c10::Layout's values; referenced where a kernel's call of torch::stable::empty is not inlined)
int32_t aoti_torch_layout_strided() { return 0; }
int32_t aoti_torch_layout_sparse_coo() { return 1; }
int32_t aoti_torch_layout_sparse_csr() { return 2; }
int32_t aoti_torch_layout__mkldnn() { return 3; }
int32_t aoti_torch_layout_sparse_csc() { return 4; }
int32_t aoti_torch_layout_sparse_bsr() { return 5; }
int32_t aoti_torch_layout_sparse_bsc() { return 6; }
int32_t aoti_torch_layout_jagged() { return 7; }

int32_t aoti_torch_memory_format_contiguous_format() { return 0; }
int32_t aoti_torch_memory_format_preserve_format() { return 1; }
int32_t aoti_torch_memory_format_channels_last() { return 2; }
int32_t aoti_torch_memory_format_channels_last_3d() { return 3; }

AOTITorchError aoti_torch_new_uninitialized_tensor(AtenTensorHandle* ret) { FAKE_OK(*ret = new AtenTensorOpaque{}); }
AOTITorchError aoti_torch_new_tensor_handle(AtenTensorHandle orig, AtenTensorHandle* ret) {
  FAKE_OK(*ret = new AtenTensorOpaque{orig->t});
}
AOTITorchError aoti_torch_delete_tensor_object(AtenTensorHandle t) { FAKE_OK(delete t); }
AOTITorchError aoti_torch_is_defined(AtenTensorHandle t, bool* ret) { FAKE_OK(*ret = t->t != nullptr); }
AOTITorchError aoti_torch_get_dim(AtenTensorHandle t, int64_t* ret) { FAKE_OK(*ret = t->t->sizes.size()); }
AOTITorchError aoti_torch_get_numel(AtenTensorHandle t, int64_t* ret) { FAKE_OK(*ret = replay::numel(t->t->sizes)); }
AOTITorchError aoti_torch_get_sizes(AtenTensorHandle t, int64_t** ret) { FAKE_OK(*ret = t->t->sizes.data()); }
AOTITorchError aoti_torch_get_size(AtenTensorHandle t, int64_t d, int64_t* ret) {
  FAKE_OK(*ret = t->t->sizes.at(d < 0 ? d + t->t->sizes.size() : d));  // (a negative d counts from the end)
}
AOTITorchError aoti_torch_get_strides(AtenTensorHandle t, int64_t** ret) { FAKE_OK(*ret = t->t->strides.data()); }
AOTITorchError aoti_torch_get_stride(AtenTensorHandle t, int64_t d, int64_t* ret) {
  FAKE_OK(*ret = t->t->strides.at(d < 0 ? d + t->t->strides.size() : d));
}
AOTITorchError aoti_torch_get_dtype(AtenTensorHandle t, int32_t* ret) { FAKE_OK(*ret = t->t->dtype); }
AOTITorchError aoti_torch_get_device_type(AtenTensorHandle, int32_t* ret) { FAKE_OK(*ret = replay::kCpu); }
AOTITorchError aoti_torch_get_device_index(AtenTensorHandle, int32_t* ret) { FAKE_OK(*ret = -1); }
AOTITorchError aoti_torch_is_contiguous(AtenTensorHandle t, bool* ret) { FAKE_OK(*ret = replay::is_contiguous(*t->t)); }
AOTITorchError torch_get_mutable_data_ptr(AtenTensorHandle t, void** ret) {
  FAKE_OK(*ret = t->t->data() + t->t->offset * replay::element_size(t->t->dtype));
}
AOTITorchError torch_get_const_data_ptr(AtenTensorHandle t, const void** ret) {
  FAKE_OK(*ret = t->t->data() + t->t->offset * replay::element_size(t->t->dtype));
}
AOTITorchError aoti_torch_aten_fill__Scalar(AtenTensorHandle self, double value) {
  TensorData& t = *self->t;
  FAKE_OK(replay::for_each_offset(
      t, [&](int64_t, int64_t off) { replay::store(t.dtype, t.data() + off * replay::element_size(t.dtype), value); }));
}

AOTITorchError torch_new_list_reserve_size(size_t size, StableListHandle* ret) {
  FAKE_OK(*ret = new StableListOpaque{}; (*ret)->items.reserve(size));
}
AOTITorchError torch_list_push_back(StableListHandle list, StableIValue v) { FAKE_OK(list->items.push_back(v)); }
AOTITorchError torch_list_size(StableListHandle list, size_t* ret) { FAKE_OK(*ret = list->items.size()); }
AOTITorchError torch_list_get_item(StableListHandle list, size_t i, StableIValue* ret) {
  FAKE_OK(*ret = list->items.at(i));
}
AOTITorchError torch_delete_list(StableListHandle list) { FAKE_OK(delete list); }

AOTITorchError torch_parallel_for(int64_t begin, int64_t end, int64_t, ParallelFunc fn, void* ctx) {
  FAKE_OK(if (begin < end) fn(begin, end, ctx));
}

AOTITorchError torch_call_dispatcher(const char* op, const char* overload, StableIValue* stack, uint64_t) {
  std::string name = op;
  if (overload != nullptr && *overload != 0) name += std::string(".") + overload;
  FAKE_OK(replay::dispatch(name, stack));
}

AOTITorchError aoti_torch_library_init_def(const char*, const char*, uint32_t, TorchLibraryHandle* ret) {
  FAKE_OK(*ret = new TorchLibraryOpaque{});
}
AOTITorchError aoti_torch_library_def(TorchLibraryHandle, const char*) { return AOTI_TORCH_SUCCESS; }
AOTITorchError aoti_torch_library_init_impl(const char* ns, const char* k, const char*, uint32_t,
                                            TorchLibraryHandle* ret) {
  FAKE_OK(*ret = new TorchLibraryOpaque{}; (*ret)->cpu_impl = std::string(ns) == "fastloss" && std::string(k) == "CPU");
}
AOTITorchError torch_library_impl(TorchLibraryHandle lib, const char* name,
                                  void (*fn)(StableIValue*, uint64_t, uint64_t), uint64_t) {
  FAKE_OK(if (lib->cpu_impl) replay::kernels()[name] = fn);
}
AOTITorchError aoti_torch_delete_library_object(TorchLibraryHandle lib) { FAKE_OK(delete lib); }
}
