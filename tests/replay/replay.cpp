// fastloss's CPU kernels without torch: replays the calls tests/replay/record.py recorded (every op
// call of the bitwise cases, forward and backward) through the kernels' own boxed entry points, over
// fake_torch.cpp's buffers, and holds every returned and written tensor to the recorded one, bit for
// bit (NaNs of any payload count as equal: an aarch64 operation's default NaN is positive, x86's
// negative). Built for this machine's SIMD flavours and, with Debian's cross g++, for aarch64 (run
// under qemu-user): Makefile target aarch64-kernels.
//
//     replay CALLS_FILE      prints one line per failing call, then the digest of all results
#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/stableivalue_conversions.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>

#include "fake_torch.h"

namespace {

using replay::TensorData;
namespace sd = torch::stable::detail;

struct Reader {
  std::ifstream in;
  template <typename T>
  T get() {
    T v;
    if (!in.read(reinterpret_cast<char*>(&v), sizeof v)) throw std::runtime_error("the calls file ends early");
    return v;
  }
  std::string str() {
    std::string s(get<uint32_t>(), '\0');
    in.read(s.data(), static_cast<std::streamsize>(s.size()));
    return s;
  }
  std::shared_ptr<TensorData> tensor() {
    auto t = std::make_shared<TensorData>();
    t->dtype = get<int32_t>();
    const uint32_t dim = get<uint32_t>();
    for (uint32_t d = 0; d < dim; ++d) t->sizes.push_back(get<int64_t>());
    for (uint32_t d = 0; d < dim; ++d) t->strides.push_back(get<int64_t>());
    t->storage = std::make_shared<replay::Storage>(get<uint64_t>());
    in.read(reinterpret_cast<char*>(t->storage->data()), static_cast<std::streamsize>(t->storage->size()));
    return t;
  }
};

bool is_float(int32_t dtype) { return dtype == 5 || dtype == 6 || dtype == 7 || dtype == 15; }

// The elements' bytes, every NaN written as the one pattern 0xFF… (so payload and sign never count).
std::vector<uint8_t> canonical_bytes(const TensorData& t) {
  std::vector<uint8_t> b = replay::bytes(t);
  if (!is_float(t.dtype)) return b;
  const size_t size = replay::element_size(t.dtype);
  const std::vector<double> v = replay::values(t);
  for (size_t i = 0; i < v.size(); ++i)
    if (std::isnan(v[i])) std::memset(b.data() + i * size, 0xFF, size);
  return b;
}

uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

// "" when got is want bit for bit (NaNs aside), else what differs.
std::string compare(const TensorData& got, const TensorData& want, uint64_t& digest) {
  if (got.dtype != want.dtype)
    return "dtype " + std::to_string(got.dtype) + " instead of " + std::to_string(want.dtype);
  if (got.sizes != want.sizes) return "another shape";
  const std::vector<uint8_t> g = canonical_bytes(got), w = canonical_bytes(want);
  digest = fnv1a(digest, &got.dtype, sizeof got.dtype);
  digest = fnv1a(digest, g.data(), g.size());
  if (g == w) return "";
  const std::vector<double> gv = replay::values(got), wv = replay::values(want);
  size_t differ = 0;
  double widest = 0;
  for (size_t i = 0; i < gv.size(); ++i) {
    if (std::memcmp(g.data() + i * replay::element_size(got.dtype), w.data() + i * replay::element_size(got.dtype),
                    replay::element_size(got.dtype)) == 0)
      continue;
    ++differ;
    widest = std::max(widest, std::fabs(gv[i] - wv[i]));
  }
  char buf[128];
  std::snprintf(buf, sizeof buf, "%zu of %zu values differ, by up to %.3g", differ, gv.size(), widest);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CALLS_FILE (written by tests/replay/record.py)\n", argv[0]);
    return 2;
  }
  Reader r{std::ifstream(argv[1], std::ios::binary)};
  char magic[8];
  if (!r.in.read(magic, 8) || std::memcmp(magic, "FLCALLS1", 8) != 0) {
    std::fprintf(stderr, "%s: not a calls file of tests/replay/record.py\n", argv[1]);
    return 2;
  }
  const uint32_t calls = r.get<uint32_t>();
  uint64_t digest = 0xcbf29ce484222325ull;
  int failed = 0;
  for (uint32_t c = 0; c < calls; ++c) {
    const std::string op = r.str();
    const uint32_t nargs = r.get<uint32_t>();
    std::vector<StableIValue> stack;
    std::vector<std::shared_ptr<TensorData>> args(nargs);
    for (uint32_t i = 0; i < nargs; ++i) {
      const auto kind = r.get<uint8_t>();
      const bool optional = r.get<uint8_t>() != 0;
      auto value = [&](auto v) { return optional ? sd::from(std::optional<decltype(v)>(v)) : sd::from(v); };
      switch (kind) {
        case 0: stack.push_back(sd::from(std::nullopt)); break;
        case 1:
          args[i] = r.tensor();
          stack.push_back(optional ? sd::from(std::optional<torch::stable::Tensor>(
                                         sd::to<torch::stable::Tensor>(replay::tensor_value(args[i]))))
                                   : replay::tensor_value(args[i]));
          break;
        case 2: stack.push_back(value(r.get<int64_t>())); break;
        case 3: stack.push_back(value(r.get<double>())); break;
        case 4: stack.push_back(value(r.get<uint8_t>() != 0)); break;
        default: std::fprintf(stderr, "call %u (%s): argument kind %d unknown\n", c, op.c_str(), kind); return 2;
      }
    }
    std::vector<std::shared_ptr<TensorData>> want(r.get<uint32_t>());
    for (auto& t : want) t = r.tensor();
    std::vector<std::pair<uint32_t, std::shared_ptr<TensorData>>> written(r.get<uint32_t>());
    for (auto& [i, t] : written) i = r.get<uint32_t>(), t = r.tensor();

    std::string problem;
    const auto kernel = replay::kernels().find(op);
    if (kernel == replay::kernels().end()) {
      problem = "no CPU kernel registered";
    } else {
      stack.resize(std::max<size_t>(stack.size(), want.size()));
      try {
        kernel->second(stack.data(), nargs, want.size());
        for (size_t k = 0; k < want.size() && problem.empty(); ++k) {
          const std::string p = compare(*replay::tensor_of(stack[k]), *want[k], digest);
          if (!p.empty()) problem = "result " + std::to_string(k) + ": " + p;
        }
        for (const auto& [i, t] : written) {
          const std::string p = compare(*args.at(i), *t, digest);
          if (!p.empty() && problem.empty()) problem = "argument " + std::to_string(i) + " as written: " + p;
        }
      } catch (const std::exception& e) {
        problem = std::string("raised: ") + e.what();
      }
    }
    if (!problem.empty()) {
      ++failed;
      std::printf("call %u (%s): %s\n", c, op.c_str(), problem.c_str());
    }
  }
  std::printf("replayed %u calls: %d differ from the recording; digest of the results %016llx\n", calls, failed,
              static_cast<unsigned long long>(digest));
  return failed == 0 ? 0 : 1;
}
