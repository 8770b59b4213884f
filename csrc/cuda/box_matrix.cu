// CUDA kernels of fastloss::box_iou_matrix over math/box_matrix.h (the formulas the CPU tests
// prove): each box's fields once, then one output element per thread in a grid-stride loop,
// written in the output's dtype. Backward without atomics: a thread per (box, chunk of the other
// set) adds its pairs' gradients in index order into a partial; a second kernel adds each box's
// partials in order. The chunks are chosen from the sizes alone (enough for ~2^16 threads: a GT ×
// anchor matrix has few boxes of one set and many of the other), so the bits are the same on every
// GPU and run.
#include "cuda/launch.cuh"
#include "ops/box_matrix.h"

namespace fastloss::box_matrix {
namespace {

template <typename opmath_t>
__device__ __forceinline__ void load_fields(const opmath_t* f, int64_t rows, int64_t i, opmath_t (&out)[kFields]) {
  for (int k = 0; k < kFields; ++k) out[k] = f[k * rows + i];
}

template <typename scalar_t, typename opmath_t>
__global__ void fields_kernel(const scalar_t* in, int64_t rows, int format, bool angle, opmath_t* f) {
  cuda::for_each_element(rows, 1,
                         [&](int64_t r, int64_t, int64_t) { write_box_fields(in, r, rows, format, angle, f); });
}

template <typename opmath_t, typename out_t>
__global__ void forward_kernel(Args<opmath_t> a, out_t* out) {
  const int64_t rows = a.batch * a.n, rows_b = a.batch * a.m;
  const int64_t cols = a.aligned ? 1 : a.m;
  cuda::for_each_element(rows * cols, cols, [&](int64_t i, int64_t r, int64_t c) {
    opmath_t fa[kFields], fb[kFields], ga[4], gb[4];
    load_fields(a.fa, rows, r, fa);
    load_fields(a.fb, rows_b, a.aligned ? r : (r / a.n) * a.m + c, fb);
    out[i] = static_cast<out_t>(pair_metric<false>(a.prm, fa, fb, opmath_t(1), ga, gb));
  });
}

// The gradient of one box (kFirst: of boxes1, walking a row of grad; else of boxes2, a column) over
// the chunk-th `chunk` boxes of the other set (aligned: its one pair), in the fields' corners.
template <bool kFirst, typename opmath_t>
__global__ void backward_partial_kernel(Args<opmath_t> a, GradView<opmath_t> grad, int64_t chunks, int64_t chunk,
                                        opmath_t* partial) {
  const int64_t rows = a.batch * a.n, rows_b = a.batch * a.m;
  cuda::for_each_element((kFirst ? rows : rows_b) * chunks, chunks, [&](int64_t i, int64_t box, int64_t part) {
    opmath_t own[kFields], other[kFields], g_own[4] = {0, 0, 0, 0};
    load_fields(kFirst ? a.fa : a.fb, kFirst ? rows : rows_b, box, own);
    const int64_t batch = kFirst ? box / a.n : box / a.m, along = a.aligned ? 1 : (kFirst ? a.m : a.n);
    const int64_t end = part * chunk + chunk < along ? part * chunk + chunk : along;
    for (int64_t k = part * chunk; k < end; ++k) {
      const int64_t other_box = a.aligned ? box : (kFirst ? batch * a.m : batch * a.n) + k;
      load_fields(kFirst ? a.fb : a.fa, kFirst ? rows_b : rows, other_box, other);
      // this pair's (row of boxes1, column of boxes2) within the batch
      const int64_t row = a.aligned || kFirst ? box - batch * a.n : k;
      const int64_t col = a.aligned ? 0 : kFirst ? k : box - batch * a.m;
      const opmath_t g = *grad.at(batch, row, col);
      opmath_t g_other[4] = {0, 0, 0, 0};
      if (kFirst) {
        pair_metric<true>(a.prm, own, other, g, g_own, g_other);
      } else {
        pair_metric<true>(a.prm, other, own, g, g_other, g_own);
      }
    }
    for (int c = 0; c < 4; ++c) partial[i * 4 + c] = g_own[c];
  });
}

// Each box's partials added in chunk order, then written in the boxes' format.
template <typename opmath_t>
__global__ void backward_combine_kernel(const opmath_t* partial, int64_t boxes, int64_t chunks, int format,
                                        opmath_t* out) {
  cuda::for_each_element(boxes, 1, [&](int64_t box, int64_t, int64_t) {
    opmath_t g[4] = {0, 0, 0, 0};
    for (int64_t part = 0; part < chunks; ++part)
      for (int c = 0; c < 4; ++c) g[c] += partial[(box * chunks + part) * 4 + c];
    store_box_grad(g, format, out + box * 4);
  });
}

// Chunks of the other set per box: about 2^16 (box, chunk) threads in all, at least one pair each.
inline int64_t chunks_for(int64_t boxes, int64_t along) {
  const int64_t wanted = std::max<int64_t>(int64_t(1) << 16, boxes) / std::max<int64_t>(boxes, 1);
  return std::clamp<int64_t>(wanted, 1, std::max<int64_t>(along, 1));
}

struct CudaKernels {
  template <typename scalar_t, typename opmath_t>
  static void fields(const Tensor& boxes, int format, bool angle, Tensor& out) {
    const cuda::DeviceGuard guard(out);
    const int64_t rows = out.size(1);
    cuda::launch_over(rows, fields_kernel<scalar_t, opmath_t>, boxes.const_data_ptr<scalar_t>(), rows, format, angle,
                      out.mutable_data_ptr<opmath_t>());
  }

  template <typename opmath_t, typename out_t>
  static void forward(const Args<opmath_t>& a, Tensor& out) {
    const cuda::DeviceGuard guard(out);
    cuda::launch_over(out.numel(), forward_kernel<opmath_t, out_t>, a, out.mutable_data_ptr<out_t>());
  }

  template <typename opmath_t>
  static void backward(const Args<opmath_t>& a, const GradView<opmath_t>& grad, Tensor& grad1, Tensor& grad2) {
    const cuda::DeviceGuard guard(grad1.numel() > 0 ? grad1 : grad2);
    if (grad1.numel() > 0) backward_of<true>(a, grad, a.batch * a.n, a.aligned ? 1 : a.m, grad1);
    if (grad2.numel() > 0) backward_of<false>(a, grad, a.batch * a.m, a.aligned ? 1 : a.n, grad2);
  }

  template <bool kFirst, typename opmath_t>
  static void backward_of(const Args<opmath_t>& a, const GradView<opmath_t>& grad, int64_t boxes, int64_t along,
                          Tensor& out) {
    const int64_t chunks = chunks_for(boxes, along), chunk = (along + chunks - 1) / chunks;
    const Tensor partial = empty({boxes * chunks * 4}, options(out));
    cuda::launch_over(boxes * chunks, backward_partial_kernel<kFirst, opmath_t>, a, grad, chunks, chunk,
                      partial.mutable_data_ptr<opmath_t>());
    cuda::launch_over(boxes, backward_combine_kernel<opmath_t>, partial.const_data_ptr<opmath_t>(), boxes, chunks,
                      a.format, out.mutable_data_ptr<opmath_t>());
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("box_iou_matrix", TORCH_BOX(&forward<CudaKernels>));
  m.impl("box_iou_matrix_backward", TORCH_BOX(&backward<CudaKernels>));
}

}  // namespace fastloss::box_matrix
