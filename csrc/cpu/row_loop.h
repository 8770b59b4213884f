#pragma once
// The CPU loop shared by every loss over a rows × cols layout: elements are cut into fixed
// chunks of kChunk flat indices, chunks run in parallel, and each chunk walks its row segments.
// Chunks, not threads, own partial sums and the partials are added in chunk order, so a
// reduction is bitwise the same on every run and for every thread count.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>
#include "common/stable_tensor.h"

namespace fastloss::cpu {

constexpr int64_t kChunk = int64_t(1) << 14;

// Rows per parallel task for rows of per_row elements each: about kChunk elements a task (a grain
// only: results never depend on it).
inline int64_t rows_grain(int64_t per_row) { return std::max<int64_t>(1, kChunk / std::max<int64_t>(per_row, 1)); }

// fn(chunk_index, begin, end) for every chunk of [0, n), in parallel.
template <typename Fn>
inline void parallel_chunks(int64_t n, const Fn& fn) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  torch::stable::parallel_for(0, chunks, 1, [&](int64_t first, int64_t last) {
    for (int64_t k = first; k < last; ++k) fn(k, k * kChunk, std::min(n, (k + 1) * kChunk));
  });
}

// seg(row, col_begin, col_end) for the row segments covering flat range [begin, end).
template <typename Seg>
inline void for_each_segment(int64_t begin, int64_t end, int64_t cols, const Seg& seg) {
  int64_t r = begin / cols, c = begin - r * cols;
  for (int64_t i = begin; i < end; ++r, c = 0) {
    const int64_t c_end = std::min(cols, c + (end - i));
    seg(r, c, c_end);
    i += c_end - c;
  }
}

// Sum (and count) of per-chunk partials, combined in chunk order.
struct SumCount {
  double sum = 0;
  int64_t count = 0;
  SumCount& operator+=(const SumCount& o) {
    sum += o.sum;
    count += o.count;
    return *this;
  }
};

template <typename ChunkSum>  // SumCount chunk_sum(begin, end)
inline SumCount sum_chunks(int64_t n, const ChunkSum& chunk_sum) {
  std::vector<SumCount> partial((n + kChunk - 1) / kChunk);
  parallel_chunks(n, [&](int64_t k, int64_t begin, int64_t end) { partial[k] = chunk_sum(begin, end); });
  SumCount total;
  for (const SumCount& p : partial) total += p;
  return total;
}

// A label outside [0, count) that is not ignore_index, seen by any thread: an error after the loop
// (a kernel never uses such a label as an address).
struct BadLabel {
  std::atomic<bool> seen{false};
  std::atomic<int64_t> value{0};

  void record(int64_t label) {
    value.store(label, std::memory_order_relaxed);
    seen.store(true, std::memory_order_relaxed);
  }
  void check(const char* op, int64_t count) const {
    FASTLOSS_CHECK_VALUE(!seen.load(), op, ": target has label ", value.load(), " outside [0, ", count,
                         ") that is not ignore_index");
  }
};

}  // namespace fastloss::cpu
