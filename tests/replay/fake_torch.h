#pragma once
// tests/replay: the tensors of fake_torch.cpp (torch's stable C shim over plain buffers) and the
// kernel table its m.impl() fills.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/inductor/aoti_torch/c/shim.h>

namespace replay {

using Storage = std::vector<uint8_t>;

struct TensorData {
  int32_t dtype = 0;  // c10::ScalarType's code
  std::vector<int64_t> sizes, strides;
  int64_t offset = 0;  // in elements
  std::shared_ptr<Storage> storage;
  uint8_t* data() const { return storage->data(); }
};

size_t element_size(int32_t dtype);

using BoxedKernel = void (*)(StableIValue* stack, uint64_t args, uint64_t outputs);
// The CPU kernels registered (STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, ...)), by op name.
std::map<std::string, BoxedKernel>& kernels();

StableIValue tensor_value(std::shared_ptr<TensorData> t);  // an owning handle, as from(Tensor)
std::shared_ptr<TensorData> tensor_of(StableIValue v);     // takes the handle, as to<Tensor>
std::vector<uint8_t> bytes(const TensorData& t);           // the elements in row-major order
std::vector<double> values(const TensorData& t);

}  // namespace replay
