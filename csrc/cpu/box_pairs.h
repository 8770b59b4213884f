#pragma once
// CPU loops over pairs of boxes (ops/box_pairs.h): SIMD lanes along the second boxes (pairwise: those
// first copied as a structure of arrays, kFields values × M) or along the pairs (aligned: a vector's
// boxes transposed as they are read). The forward writes a row of pairs per task. The backward's sums
// run in a fixed order whatever the vector width: boxes1's over its row (cpu::Wide: element j in lane
// j mod 64 bytes), boxes2's over its column, a vector of columns per task walking the rows in order.
#include <vector>
#include "cpu/field_lanes.h"
#include "cpu/row_loop.h"
#include "ops/box_pairs.h"

namespace fastloss::box_pairs {

template <int kFields, typename S>
std::vector<S> fields_of(const S* boxes, int64_t count) {
  std::vector<S> out(static_cast<size_t>(kFields * count));
  for (int64_t i = 0; i < count; ++i)
    for (int k = 0; k < kFields; ++k) out[k * count + i] = boxes[i * kFields + k];
  return out;
}

template <typename Math>
struct CpuKernels {
  static constexpr int kFields = Math::kFields;

  template <typename S>
  static void forward(const Args<kFields, S>& a, Tensor& result) {
    using Vec = simd::Vec<S>;
    constexpr int64_t W = Vec::size();
    S* out = result.mutable_data_ptr<S>();
    if (a.aligned) {
      cpu::parallel_chunks(a.n, [&](int64_t, int64_t begin, int64_t end) {
        Vec p[kFields], q[kFields];
        for (int64_t i = begin; i < end; i += W) {
          const int64_t n = std::min(W, end - i);
          cpu::load_rows(a.boxes1, i, n, p);
          cpu::load_rows(a.boxes2, i, n, q);
          Math::value(p, q, a.eps, a.param).store(out + i, n);
        }
      });
      return;
    }
    const std::vector<S> second = fields_of<kFields>(a.boxes2, a.m);
    torch::stable::parallel_for(0, a.n, cpu::rows_grain(a.m), [&](int64_t begin, int64_t end) {
      Vec p[kFields], q[kFields];
      for (int64_t i = begin; i < end; ++i) {
        cpu::broadcast_item(a.boxes1 + i * kFields, 1, 0, p);
        for (int64_t j = 0; j < a.m; j += W) {
          const int64_t n = std::min(W, a.m - j);
          cpu::load_items(second.data(), a.m, j, n, q);
          Math::value(p, q, a.eps, a.param).store(out + i * a.m + j, n);
        }
      }
    });
  }

  template <typename S>
  static void backward(const Args<kFields, S>& a, const Tensor& upstream, S* g1, S* g2) {
    using Vec = simd::Vec<S>;
    constexpr int64_t W = Vec::size();
    const S* grad = upstream.const_data_ptr<S>();
    if (a.aligned) {
      cpu::parallel_chunks(a.n, [&](int64_t, int64_t begin, int64_t end) {
        Vec p[kFields], q[kFields], dp[kFields], dq[kFields];
        for (int64_t i = begin; i < end; i += W) {
          const int64_t n = std::min(W, end - i);
          cpu::load_rows(a.boxes1, i, n, p);
          cpu::load_rows(a.boxes2, i, n, q);
          Math::gradient(p, q, a.eps, a.param, Vec::loadu(grad + i, n), dp, dq);
          if (g1 != nullptr) cpu::store_rows(dp, g1, i, n);
          if (g2 != nullptr) cpu::store_rows(dq, g2, i, n);
        }
      });
      return;
    }
    const std::vector<S> second = fields_of<kFields>(a.boxes2, a.m);
    if (g1 != nullptr) {
      torch::stable::parallel_for(0, a.n, cpu::rows_grain(a.m), [&](int64_t begin, int64_t end) {
        Vec p[kFields], q[kFields], dp[kFields], dq[kFields];
        for (int64_t i = begin; i < end; ++i) {
          cpu::broadcast_item(a.boxes1 + i * kFields, 1, 0, p);
          cpu::Wide<Vec> acc[kFields];
          for (int64_t j = 0; j < a.m; j += W) {
            const int64_t n = std::min(W, a.m - j);
            cpu::load_items(second.data(), a.m, j, n, q);
            Math::gradient(p, q, a.eps, a.param, Vec::loadu(grad + i * a.m + j, n), dp, dq);
            for (int k = 0; k < kFields; ++k) acc[k].current() = acc[k].current() + cpu::first_lanes(dp[k], n);
            for (int k = 0; k < kFields; ++k) acc[k].rotate();
          }
          for (int k = 0; k < kFields; ++k) g1[i * kFields + k] = static_cast<S>(acc[k].sum_lanes());
        }
      });
    }
    if (g2 != nullptr) {
      const int64_t vectors = (a.m + W - 1) / W;
      torch::stable::parallel_for(0, vectors, cpu::rows_grain(a.n), [&](int64_t first, int64_t last) {
        Vec p[kFields], q[kFields], dp[kFields], dq[kFields];
        for (int64_t v = first; v < last; ++v) {
          const int64_t j = v * W, n = std::min(W, a.m - j);
          cpu::load_items(second.data(), a.m, j, n, q);
          Vec acc[kFields];
          for (Vec& x : acc) x = Vec(S(0));
          for (int64_t i = 0; i < a.n; ++i) {  // (each lane its column's sum, in row order)
            cpu::broadcast_item(a.boxes1 + i * kFields, 1, 0, p);
            Math::gradient(p, q, a.eps, a.param, Vec::loadu(grad + i * a.m + j, n), dp, dq);
            for (int k = 0; k < kFields; ++k) acc[k] = acc[k] + dq[k];
          }
          cpu::store_rows(acc, g2, j, n);
        }
      });
    }
  }
};

}  // namespace fastloss::box_pairs
