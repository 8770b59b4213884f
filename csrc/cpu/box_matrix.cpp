// CPU kernels of fastloss::box_iou_matrix: each box's fields once (math/box_matrix.h), then the
// pairs Vec::size() boxes2 at a time against one box of boxes1 broadcast to every lane, written
// straight into the output in its dtype — nothing of N × M besides the output.
// Backward: boxes1's gradient row by row (lanes over boxes2, summed in lane order), boxes2's
// gradient a vector of boxes2 at a time down the rows of boxes1 — both in a fixed order, so the
// gradients are the same on every run and for every thread count.
#include "cpu/field_lanes.h"
#include "cpu/huge_pages.h"
#include "cpu/row_loop.h"
#include "cpu/vec_ops.h"
#include "ops/box_matrix.h"

namespace fastloss::box_matrix {
namespace {

template <typename opmath_t>
struct Lanes {
  using Vec = simd::Vec<opmath_t>;
  static constexpr int64_t W = Vec::size();
};

struct CpuKernels {
  template <typename scalar_t, typename opmath_t>
  static void fields(const Tensor& boxes, int format, bool angle, Tensor& out) {
    const scalar_t* in = boxes.const_data_ptr<scalar_t>();
    opmath_t* f = out.mutable_data_ptr<opmath_t>();
    const int64_t rows = out.size(1);
    torch::stable::parallel_for(0, rows, cpu::kChunk, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) write_box_fields(in, r, rows, format, angle, f);
    });
  }

  template <typename opmath_t, typename out_t>
  static void forward(const Args<opmath_t>& a, Tensor& result) {
    using L = Lanes<opmath_t>;
    using Vec = typename L::Vec;
    out_t* out = result.mutable_data_ptr<out_t>();
    cpu::advise_huge_pages(out, result.numel() * static_cast<int64_t>(sizeof(out_t)));
    const int64_t rows = a.batch * a.n, rows_b = a.batch * a.m;
    const Vec one(opmath_t(1));
    if (a.aligned) {
      torch::stable::parallel_for(0, rows, cpu::kChunk, [&](int64_t begin, int64_t end) {
        Vec fa[kFields], fb[kFields], ga[4], gb[4];
        for (int64_t i = begin; i < end; i += L::W) {
          const int64_t n = std::min(L::W, end - i);
          cpu::load_items(a.fa, rows, i, n, fa);
          cpu::load_items(a.fb, rows_b, i, n, fb);
          cpu::store_as(pair_metric<false>(a.prm, fa, fb, one, ga, gb), out + i, n);
        }
      });
      return;
    }
    torch::stable::parallel_for(0, rows, cpu::rows_grain(a.m), [&](int64_t begin, int64_t end) {
      Vec fa[kFields], fb[kFields], ga[4], gb[4];
      for (int64_t r = begin; r < end; ++r) {
        const int64_t first_b = (r / a.n) * a.m;
        cpu::broadcast_item(a.fa, rows, r, fa);
        out_t* row = out + r * a.m;
        for (int64_t j = 0; j < a.m; j += L::W) {
          const int64_t n = std::min(L::W, a.m - j);
          cpu::load_items(a.fb, rows_b, first_b + j, n, fb);
          cpu::store_as(pair_metric<false>(a.prm, fa, fb, one, ga, gb), row + j, n);
        }
      }
    });
  }

  template <typename opmath_t>
  static void backward(const Args<opmath_t>& a, const GradView<opmath_t>& grad, Tensor& grad1, Tensor& grad2) {
    using L = Lanes<opmath_t>;
    using Vec = typename L::Vec;
    // grad of row r (batch r / n, box r % n of boxes1), columns [j, j + count)
    auto grad_lanes = [&](int64_t r, int64_t j, int64_t count) {
      const opmath_t* p = grad.at(r / a.n, r % a.n, j);
      return grad.sm == 0 ? Vec(*p) : Vec::loadu(p, count);
    };
    opmath_t* out1 = grad1.numel() > 0 ? grad1.mutable_data_ptr<opmath_t>() : nullptr;
    opmath_t* out2 = grad2.numel() > 0 ? grad2.mutable_data_ptr<opmath_t>() : nullptr;
    const int64_t rows = a.batch * a.n, rows_b = a.batch * a.m;
    // The adjoints of lanes [0, n) (lanes past n hold zero boxes, whose adjoints may be NaN).
    auto pair = [&](const Vec(&fa)[kFields], const Vec(&fb)[kFields], const Vec& gv, int64_t n, auto& ga, auto& gb) {
      Vec da[4] = {Vec(0), Vec(0), Vec(0), Vec(0)}, db[4] = {Vec(0), Vec(0), Vec(0), Vec(0)};
      pair_metric<true>(a.prm, fa, fb, gv, da, db);
      for (int c = 0; c < 4; ++c) {
        ga[c] += cpu::first_lanes(da[c], n);
        gb[c] += cpu::first_lanes(db[c], n);
      }
    };
    // Lane k of v (c = 0..3) into box i + k's four gradients, for k < n.
    auto scatter = [&](const Vec(&v)[4], opmath_t* out, int64_t i, int64_t n) {
      opmath_t buf[4][L::W];
      for (int c = 0; c < 4; ++c) v[c].store(buf[c]);
      for (int64_t k = 0; k < n; ++k) {
        const opmath_t corners[4] = {buf[0][k], buf[1][k], buf[2][k], buf[3][k]};
        store_box_grad(corners, a.format, out + (i + k) * 4);
      }
    };
    if (a.aligned) {
      torch::stable::parallel_for(0, rows, cpu::kChunk, [&](int64_t begin, int64_t end) {
        Vec fa[kFields], fb[kFields];
        for (int64_t i = begin; i < end; i += L::W) {
          const int64_t n = std::min(L::W, end - i);
          cpu::load_items(a.fa, rows, i, n, fa);
          cpu::load_items(a.fb, rows_b, i, n, fb);
          Vec ga[4] = {Vec(0), Vec(0), Vec(0), Vec(0)}, gb[4] = {Vec(0), Vec(0), Vec(0), Vec(0)};
          pair(fa, fb, Vec::loadu(grad.data + i, n), n, ga, gb);  // (contiguous)
          if (out1 != nullptr) scatter(ga, out1, i, n);
          if (out2 != nullptr) scatter(gb, out2, i, n);
        }
      });
      return;
    }
    if (out1 != nullptr) {  // a row of boxes1 at a time: lanes over boxes2
      torch::stable::parallel_for(0, rows, cpu::rows_grain(a.m), [&](int64_t begin, int64_t end) {
        Vec fa[kFields], fb[kFields];
        for (int64_t r = begin; r < end; ++r) {
          const int64_t first_b = (r / a.n) * a.m;
          cpu::broadcast_item(a.fa, rows, r, fa);
          cpu::Wide<Vec> ga[4];  // (a sum along the row: the same lanes on every flavour)
          Vec unused[4] = {Vec(0), Vec(0), Vec(0), Vec(0)};
          for (int64_t j = 0; j < a.m; j += L::W) {
            const int64_t n = std::min(L::W, a.m - j);
            cpu::load_items(a.fb, rows_b, first_b + j, n, fb);
            pair(fa, fb, grad_lanes(r, j, n), n, ga, unused);
          }
          opmath_t corners[4];
          for (int c = 0; c < 4; ++c) corners[c] = static_cast<opmath_t>(cpu::sum_lanes(ga[c]));
          store_box_grad(corners, a.format, out1 + r * 4);
        }
      });
    }
    if (out2 != nullptr) {  // a vector of boxes2 at a time, down the rows of boxes1
      const int64_t blocks = (a.m + L::W - 1) / L::W;
      torch::stable::parallel_for(0, a.batch * blocks, cpu::rows_grain(a.n * L::W), [&](int64_t begin, int64_t end) {
        Vec fa[kFields], fb[kFields];
        for (int64_t t = begin; t < end; ++t) {
          const int64_t batch = t / blocks, j = (t - batch * blocks) * L::W, n = std::min(L::W, a.m - j);
          cpu::load_items(a.fb, rows_b, batch * a.m + j, n, fb);
          Vec gb[4] = {Vec(0), Vec(0), Vec(0), Vec(0)}, unused[4] = {Vec(0), Vec(0), Vec(0), Vec(0)};
          for (int64_t i = 0; i < a.n; ++i) {
            const int64_t r = batch * a.n + i;
            cpu::broadcast_item(a.fa, rows, r, fa);
            pair(fa, fb, grad_lanes(r, j, n), n, unused, gb);
          }
          scatter(gb, out2, batch * a.m + j, n);
        }
      });
    }
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CPU, m) {
  m.impl("box_iou_matrix", TORCH_BOX(&forward<CpuKernels>));
  m.impl("box_iou_matrix_backward", TORCH_BOX(&backward<CpuKernels>));
}

}  // namespace fastloss::box_matrix
