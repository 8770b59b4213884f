// CUDA kernels of fastloss::task_aligned_assign over math/task_aligned.h (the formulas and tie rules
// the CPU tests prove). A warp per GT scans the anchors for its top-k (each lane a running list, merged
// by k warp-wide arg-max rounds; the first zero-metric anchors ranked by a ballot). Then a thread per
// anchor: claims (integer atomics, so order-free), conflicts, the GTs' maxima (atomic max on the bits
// of non-negative floats, also order-free) and the outputs. Same inputs, same outputs on every run.
#include <climits>
#include "cuda/launch.cuh"
#include "ops/task_aligned.h"

namespace fastloss::task_aligned {
namespace {

constexpr int kWarp = cuda::kWarpSize;
constexpr int kWarpsPerBlock = cuda::kThreads / kWarp;

// The warp's best (metric, anchor) among the lanes' offers: larger metric, then lower anchor.
template <typename S>
__device__ __forceinline__ void warp_best(S& metric, int64_t& anchor) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const S m = __shfl_xor_sync(cuda::kAllLanes, metric, offset);
    const int64_t a = __shfl_xor_sync(cuda::kAllLanes, anchor, offset);
    if (TopK<S>::before(m, a, metric, anchor)) metric = m, anchor = a;
  }
}

// Merges the lanes' sorted lists into the warp's k best, best first: emit(i, anchor) in every lane
// for each; returns how many there are.
template <typename S, typename Emit>
__device__ __forceinline__ int warp_merge(const TopK<S>& top, int k, const Emit& emit) {
  int taken = 0, count = 0;
  for (; count < k; ++count) {
    S m = taken < top.count ? top.metric[taken] : S(0);
    int64_t anchor = taken < top.count ? top.anchor[taken] : LLONG_MAX;
    const int64_t mine = anchor;
    warp_best(m, anchor);
    if (anchor == LLONG_MAX) break;  // every list is exhausted
    if (anchor == mine) ++taken;     // (anchors are distinct across lanes)
    emit(count, anchor);
  }
  return count;
}

template <typename G, typename scalar_t, typename S>
__global__ void prepare_kernel(Args<G, scalar_t, S> a) {
  cuda::for_each_element(a.batch * a.anchors_n, 1, [&](int64_t p, int64_t, int64_t) { a.prepare(p); });
}

// A warp per GT: its positives into the list (−1 past them), as cpu/task_aligned.cpp's gt_positives.
template <typename G, typename scalar_t, typename S>
__global__ void gt_positives_kernel(Args<G, scalar_t, S> a) {
  __shared__ int64_t zeros[kWarpsPerBlock][kMaxTopk];
  __shared__ bool zero_is_candidate[kWarpsPerBlock][kMaxTopk];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp; g < a.batch * a.gts; g += warps) {
    const int64_t b = g / a.gts, j = g % a.gts;
    int64_t* out = a.list + g * a.topk;
    for (int i = lane; i < a.topk; i += kWarp) out[i] = -1;
    if (!a.mask[g]) continue;  // (uniform across the warp)
    TopK<S> top;
    int64_t zero_count = 0;
    for (int64_t base = 0; base < a.anchors_n; base += kWarp) {
      const int64_t anchor = base + lane;
      S overlap = 0, metric = 0;
      const bool valid = anchor < a.anchors_n;
      const bool candidate = valid && a.pair(b, j, anchor, overlap, metric);
      const bool positive = candidate && metric > S(0);
      if (positive) top.offer(a.topk, metric, anchor);
      const cuda::LaneMask zero_lanes = __ballot_sync(cuda::kAllLanes, valid && !positive);
      if (zero_count < a.topk && valid && !positive) {
        const int64_t rank = zero_count + cuda::lane_count(zero_lanes & cuda::lanes_below(lane));
        if (rank < a.topk) zeros[warp][rank] = anchor, zero_is_candidate[warp][rank] = candidate;
      }
      zero_count += cuda::lane_count(zero_lanes);
    }
    __syncwarp();
    const int selected = warp_merge(top, a.topk, [&](int i, int64_t anchor) {
      if (lane == 0) out[i] = anchor;
    });
    if (lane == 0) {
      int n = selected;
      for (int i = 0; i < a.topk - selected && i < zero_count && i < a.topk; ++i)
        if (zero_is_candidate[warp][i]) out[n++] = zeros[warp][i];
    }
    __syncwarp();
  }
}

// Claims on each anchor: their number, and M − the lowest claiming GT (an order-free max).
template <typename G, typename scalar_t, typename S>
__global__ void claims_kernel(Args<G, scalar_t, S> a) {
  cuda::for_each_element(a.batch * a.gts * a.topk, a.topk, [&](int64_t i, int64_t g, int64_t) {
    const int64_t anchor = a.list[i];
    if (anchor < 0) return;
    const int64_t b = g / a.gts, j = g % a.gts, p = b * a.anchors_n + anchor;
    atomicAdd(a.claims + p, 1);
    atomicMax(a.first_claim + p, static_cast<int32_t>(a.gts - j));
  });
}

// Each anchor's GT (an anchor claimed twice: the GT of highest overlap), flag, metric and overlap.
template <typename G, typename scalar_t, typename S>
__global__ void resolve_kernel(Args<G, scalar_t, S> a) {
  cuda::for_each_element(a.batch * a.anchors_n, a.anchors_n, [&](int64_t p, int64_t b, int64_t anchor) {
    const int32_t claims = a.claims[p];
    S overlap, metric;
    int64_t owner = claims > 0 ? a.gts - a.first_claim[p] : 0;
    if (claims > 1) {
      S best_overlap = 0;
      for (int64_t j = 0; j < a.gts; ++j) {
        const S o = a.pair(b, j, anchor, overlap, metric) ? overlap : S(0);
        if (j == 0 || o > best_overlap) owner = j, best_overlap = o;
      }
    }
    a.fg[p] = claims > 0;
    a.target_gt_idx[p] = owner;
    if (claims > 0 && a.pair(b, owner, anchor, overlap, metric)) a.metrics[p] = metric, a.overlaps[p] = overlap;
  });
}

// top-k2: a warp per GT keeps its top-k2 positives (zeros by index), as the CPU's assign_image; the
// anchors it drops get claims = −1.
template <typename G, typename scalar_t, typename S>
__global__ void topk2_kernel(Args<G, scalar_t, S> a) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp; g < a.batch * a.gts; g += warps) {
    const int64_t b = g / a.gts, j = g % a.gts;
    const int64_t* owner = a.target_gt_idx + b * a.anchors_n;
    const bool* fg = a.fg + b * a.anchors_n;
    const S* metrics = a.metrics + b * a.anchors_n;
    TopK<S> top;
    for (int64_t anchor = lane; anchor < a.anchors_n; anchor += kWarp)
      if (fg[anchor] && owner[anchor] == j && metrics[anchor] > S(0)) top.offer(a.topk2, metrics[anchor], anchor);
    // the warp's top-k2 into every lane's own `kept` list (registers: no barrier needed after it)
    int64_t kept[kMaxTopk];
    const int count = warp_merge(top, a.topk2, [&](int i, int64_t anchor) { kept[i] = anchor; });
    for (int64_t anchor = lane; anchor < a.anchors_n; anchor += kWarp) {
      if (!fg[anchor] || owner[anchor] != j) continue;
      bool keep = false;
      int64_t positive_before = 0;
      for (int i = 0; i < count; ++i) keep |= kept[i] == anchor, positive_before += kept[i] < anchor;
      if (!(metrics[anchor] > S(0))) keep = anchor - positive_before < a.topk2 - count;
      // (marked, not applied: other warps read fg and the owners; maxima_kernel applies it)
      if (!keep) a.claims[b * a.anchors_n + anchor] = -1;
    }
  }
}

// Non-negative floats order as their bit patterns: max by integer atomics.
__device__ __forceinline__ void atomic_max_nonnegative(float* at, float v) {
  atomicMax(reinterpret_cast<int*>(at), __float_as_int(v));
}
__device__ __forceinline__ void atomic_max_nonnegative(double* at, double v) {
  atomicMax(reinterpret_cast<unsigned long long*>(at), static_cast<unsigned long long>(__double_as_longlong(v)));
}

template <typename G, typename scalar_t, typename S>
__global__ void maxima_kernel(Args<G, scalar_t, S> a) {
  cuda::for_each_element(a.batch * a.anchors_n, a.anchors_n, [&](int64_t p, int64_t b, int64_t) {
    if (a.claims[p] < 0) a.fg[p] = false, a.target_gt_idx[p] = 0;  // dropped by top-k2
    if (!a.fg[p]) return;
    const int64_t g = b * a.gts + a.target_gt_idx[p];
    if (a.metrics[p] > S(0)) atomic_max_nonnegative(a.pos_metric + g, a.metrics[p]);
    if (a.overlaps[p] > S(0)) atomic_max_nonnegative(a.pos_overlap + g, a.overlaps[p]);
  });
}

template <typename G, typename scalar_t, typename S>
__global__ void norm_kernel(Args<G, scalar_t, S> a) {
  cuda::for_each_element(a.batch * a.anchors_n, a.anchors_n, [&](int64_t p, int64_t b, int64_t) {
    if (!a.fg[p]) return;
    const int64_t g = b * a.gts + a.target_gt_idx[p];
    a.norm[p] = a.metrics[p] * a.pos_overlap[g] / (a.pos_metric[g] + a.eps);
  });
}

// Each anchor's label and score (norm may lie in the boxes' memory: boxes_kernel runs after).
template <typename out_t, typename S>
__global__ void finalize_kernel(int64_t n, int64_t anchors_n, int64_t gts, int64_t classes, const int64_t* idx,
                                const bool* fg, const S* norm, const int64_t* gt_labels, int64_t* labels,
                                out_t* scores) {
  cuda::for_each_element(n, anchors_n, [&](int64_t i, int64_t b, int64_t) {
    const int64_t g = b * gts + idx[i];
    const int64_t label = gt_labels[g] > 0 ? gt_labels[g] : 0;
    labels[i] = label;
    if (!fg[i]) return;
    if (classes == 0) {
      scores[i] = static_cast<out_t>(norm[i]);
    } else if (label < classes) {
      scores[i * classes + label] = static_cast<out_t>(norm[i]);
    }
  });
}

template <typename box_t>
__global__ void boxes_kernel(int64_t n, int64_t anchors_n, int64_t gts, int64_t fields, const int64_t* idx,
                             const box_t* gt, box_t* boxes) {
  cuda::for_each_element(n, anchors_n, [&](int64_t i, int64_t b, int64_t) {
    const int64_t g = b * gts + idx[i];
    for (int64_t c = 0; c < fields; ++c) boxes[i * fields + c] = gt[g * fields + c];
  });
}

struct CudaKernels {
  template <typename G, typename scalar_t, typename S>
  static void assign(const Tensor& on, const Args<G, scalar_t, S>& a) {
    const cuda::DeviceGuard guard(on);
    const int64_t gts = a.batch * a.gts, anchors = a.batch * a.anchors_n;
    const int gt_blocks = static_cast<int>(
        std::clamp<int64_t>((gts + kWarpsPerBlock - 1) / kWarpsPerBlock, 1, cuda::multiprocessors() * 8));
    if constexpr (G::kPrepared > 0) cuda::launch_over(anchors, prepare_kernel<G, scalar_t, S>, a);
    cuda::launch(gt_blocks, gt_positives_kernel<G, scalar_t, S>, a);
    if (gts * a.topk > 0) cuda::launch_over(gts * a.topk, claims_kernel<G, scalar_t, S>, a);
    cuda::launch_over(anchors, resolve_kernel<G, scalar_t, S>, a);
    if (a.topk2 < a.topk) cuda::launch(gt_blocks, topk2_kernel<G, scalar_t, S>, a);
    cuda::launch_over(anchors, maxima_kernel<G, scalar_t, S>, a);
    cuda::launch_over(anchors, norm_kernel<G, scalar_t, S>, a);
  }

  static void finalize(const Tensors& t, const Tensor& gt_idx, const Tensor& fg, const void* norm, Tensor& labels,
                       Tensor& bboxes, Tensor& scores) {
    const cuda::DeviceGuard guard(labels);
    const int64_t n = t.batch * t.anchors_n, classes = scores.dim() == 3 ? scores.size(2) : 0;
    // the scores' dtype out_t promotes the GT boxes' (box_t); the math type is out_t's
    dispatch_floating(t.gt_in.scalar_type(), [&](auto box_type) {
      using box_t = typename decltype(box_type)::type;
      dispatch_floating(scores.scalar_type(), [&](auto out_type) {
        using out_t = typename decltype(out_type)::type;
        using S = math_type_t<out_t>;
        if constexpr (promotes_to<box_t, out_t>) {
          cuda::launch_over(n, finalize_kernel<out_t, S>, n, t.anchors_n, t.gts, classes,
                            gt_idx.const_data_ptr<int64_t>(), fg.const_data_ptr<bool>(), static_cast<const S*>(norm),
                            t.labels.const_data_ptr<int64_t>(), labels.mutable_data_ptr<int64_t>(),
                            scores.mutable_data_ptr<out_t>());
          cuda::launch_over(n, boxes_kernel<box_t>, n, t.anchors_n, t.gts, t.gt_in.size(2),
                            gt_idx.const_data_ptr<int64_t>(), t.gt_in.const_data_ptr<box_t>(),
                            bboxes.mutable_data_ptr<box_t>());
        } else {
          throw std::logic_error("fastloss: task_aligned_assign's scores do not promote its GT boxes' dtype");
        }
      });
    });
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("task_aligned_assign", TORCH_BOX(&assign<CudaKernels>));
  m.impl("rotated_task_aligned_assign", TORCH_BOX(&assign_rotated<CudaKernels>));
}

}  // namespace fastloss::task_aligned
