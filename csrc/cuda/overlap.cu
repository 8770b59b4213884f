// CUDA kernels of fastloss::overlap_sums over math/overlap.h (the formulas the CPU tests prove).
// Forward: a block per (sample, chunk of positions); each thread keeps the softmax statistics of
// its positions, and for every class the block reduces its three sums (cuda/reduce.cuh) into one
// partial per chunk; a second kernel adds the chunks in order (deterministic); p goes into the
// buffer that becomes the gradient. Backward: a thread per position, in place over that buffer.
// Labels are only compared with class indices, never used as addresses; a label outside [0, C) that
// is not ignore_index is a device-side assert (the CPU raises a ValueError), as in torch's losses.
#include "cuda/launch.cuh"
#include "cuda/reduce.cuh"
#include "ops/overlap.h"

namespace fastloss::overlap {
namespace {

// A block sums a chunk of kThreads·P positions of one sample: P = 4, or P = 1 where 4 would leave
// the GPU without enough blocks (8 × 128² positions made 128 blocks for 132 SMs).
template <int P>
constexpr int64_t chunk_positions() {
  return int64_t(cuda::kThreads) * P;
}

template <typename scalar_t, typename target_t, typename opmath_t = pair_math_t<scalar_t, target_t>>
struct Position {
  const Args<scalar_t, target_t>* a = nullptr;
  int64_t n = 0, i = 0, label = 0;
  bool valid = false;

  Position() = default;
  __device__ Position(const Args<scalar_t, target_t>& args, int64_t sample, int64_t pos) : a(&args), n(sample), i(pos) {
    valid = i < a->hw;
    if (valid && a->labels != nullptr) {
      label = a->labels[n * a->hw + i];
      valid = !(a->has_ignore && label == a->ignore_index);
      const bool in_range = !valid || (label >= 0 && label < a->label_count());
      if (!in_range)  // name it: the assert's own message cannot
        printf(
            "fastloss.dice_loss/tversky_loss: target has label %lld outside [0, %lld) that is not "
            "ignore_index\n",
            static_cast<long long>(label), static_cast<long long>(a->label_count()));
      CUDA_KERNEL_ASSERT(in_range &&
                         "dice_loss/tversky_loss: target has a label outside [0, C) that is not ignore_index");
    }
  }
  __device__ int64_t offset(int64_t c) const { return (n * a->classes + c) * a->hw + i; }
  __device__ opmath_t x(int64_t c) const { return static_cast<opmath_t>(a->x[offset(c)]); }
  __device__ opmath_t t(int64_t c) const {
    if (a->labels != nullptr) return label == c + a->label_offset ? opmath_t(1) : opmath_t(0);
    return static_cast<opmath_t>(a->t[offset(c)]);
  }
  __device__ SoftmaxStats<opmath_t> stats() const {
    return softmax_stats<opmath_t>(a->classes, [&](int64_t c) { return x(c); });
  }
  __device__ opmath_t prob(int64_t c, const SoftmaxStats<opmath_t>& s) const {
    return a->activation == kSoftmax ? s.prob(x(c)) : activate_elementwise(a->activation, x(c));
  }

  // The cross-entropy sums of the position (math/overlap_ce.h) from logits (the input's, or the
  // backward's a->logits; nullptr: only Σ u_c and Σ w_c·t_c) and lse.
  struct CeSums {
    opmath_t a = 0, log_py = 0, u = 0, w = 0;
  };
  __device__ CeSums ce_sums(const scalar_t* logits, opmath_t lse) const {
    CeSums s;
    const opmath_t v = valid ? opmath_t(1) : opmath_t(0);
    for (int64_t c = 0; c < a->classes; ++c) {
      const opmath_t tc = valid ? t(c) : opmath_t(0), u = smoothed_weight(a->ce, c, tc, v);
      s.u += u;
      s.w += a->ce.weight_of(c) * tc;
      if (logits == nullptr) continue;
      const opmath_t log_p = static_cast<opmath_t>(logits[offset(c)]) - lse;
      s.a -= times_unless_zero(u, log_p);
      s.log_py += times_unless_zero(tc, log_p);
    }
    return s;
  }
};

// Per item, `width` partials: the (class, 3) sums, then (with the cross entropy) Σ loss and Σ w_y.
template <int P, typename scalar_t, typename target_t, typename opmath_t = pair_math_t<scalar_t, target_t>>
__global__ void partial_sums_kernel(Args<scalar_t, target_t> a, int64_t chunks, int64_t width, opmath_t* partial,
                                    scalar_t* probs) {
  for (int64_t item = blockIdx.x; item < a.n * chunks; item += gridDim.x) {  // the same for the whole block
    const int64_t n = item / chunks, base = (item % chunks) * chunk_positions<P>();
    // This thread's positions (label read once) and their softmax statistics, kept for every class.
    Position<scalar_t, target_t> pos[P];
    SoftmaxStats<opmath_t> stats[P];
    for (int j = 0; j < P; ++j) {
      pos[j] = Position<scalar_t, target_t>(a, n, base + threadIdx.x + j * cuda::kThreads);
      if (pos[j].i < a.hw && a.activation == kSoftmax) stats[j] = pos[j].stats();
    }
    opmath_t focal_sum = 0, focal_count = 0;  // the sigmoid focal term's, over this thread's elements
    for (int64_t c = 0; c < a.classes; ++c) {
      opmath_t s_pt = 0, s_p = 0, s_t = 0;
      const bool focal = a.ce.sigmoid_focal() && c >= a.ce.first_class;
      for (int j = 0; j < P; ++j) {
        if (pos[j].i >= a.hw) continue;
        const opmath_t p = pos[j].prob(c, stats[j]);
        if (probs != nullptr) probs[pos[j].offset(c)] = static_cast<scalar_t>(p);
        if (!pos[j].valid) continue;
        const opmath_t t = pos[j].t(c);
        s_pt += intersection(p, t, a.soft);
        s_p += a.squared ? p * p : p;
        s_t += a.squared ? t * t : t;
        if (focal) {
          focal_sum += element_focal<false>(a.ce, c, pos[j].x(c), t, opmath_t(1));
          focal_count += opmath_t(1);
        }
      }
      s_pt = cuda::block_sum(s_pt);
      s_p = cuda::block_sum(s_p);
      s_t = cuda::block_sum(s_t);
      if (threadIdx.x == 0) {
        opmath_t* out = partial + item * width + c * 3;
        out[0] = s_pt;
        out[1] = s_p;
        out[2] = s_t;
      }
    }
    if (a.ce.on) {
      opmath_t loss = focal_sum, norm = focal_count;
      for (int j = 0; j < P && a.ce.softmax_ce(); ++j) {
        if (pos[j].i >= a.hw) continue;
        const auto ce = pos[j].ce_sums(a.x, stats[j].lse());
        loss += ce_loss(a.ce, ce.a, ce.log_py);
        norm += a.labels != nullptr ? ce.w : opmath_t(1);
      }
      loss = cuda::block_sum(loss);
      norm = cuda::block_sum(norm);
      if (threadIdx.x == 0) {
        partial[item * width + a.classes * 3] = loss;
        partial[item * width + a.classes * 3 + 1] = norm;
      }
    }
  }
}

// Where the combined partial k of a sample goes: the (C, 3) sums, then the cross entropy's (N, 2).
template <typename opmath_t>
struct SumsOut {
  opmath_t* sums;
  opmath_t* ce;
  int64_t per_sums;  // 3·C

  __device__ opmath_t& at(int64_t n, int64_t k) const {
    return k < per_sums ? sums[n * per_sums + k] : ce[n * 2 + k - per_sums];
  }
};

// The chunks' partials of each (sample, class, k) added by one block in a fixed tree, in double: a
// 512³ volume has 131072 chunks per sample, too many for one thread adding in float.
template <typename opmath_t>
__global__ void combine_chunks_kernel(const opmath_t* partial, int64_t samples, int64_t chunks, int64_t per_sample,
                                      SumsOut<opmath_t> out) {
  for (int64_t j = blockIdx.x; j < samples * per_sample; j += gridDim.x) {  // the same for the whole block
    const int64_t n = j / per_sample, k = j - n * per_sample;
    double total = 0;
    for (int64_t chunk = threadIdx.x; chunk < chunks; chunk += cuda::kThreads)
      total += static_cast<double>(partial[(n * chunks + chunk) * per_sample + k]);
    total = cuda::block_sum(total);
    if (threadIdx.x == 0) out.at(n, k) = static_cast<opmath_t>(total);
  }
}

template <typename scalar_t, typename target_t, typename opmath_t = pair_math_t<scalar_t, target_t>>
__global__ void backward_kernel(Args<scalar_t, target_t> a, const opmath_t* coef, scalar_t* probs) {
  cuda::for_each_element(a.n * a.hw, a.hw, [&](int64_t, int64_t n, int64_t i) {
    const Position<scalar_t, target_t> pos(a, n, i);
    scalar_t* out = probs + n * a.classes * a.hw + i;  // p on entry, dL/dinput on exit
    if (!pos.valid) {
      for (int64_t c = 0; c < a.classes; ++c) out[c * a.hw] = scalar_t(0);
      return;
    }
    auto grad_p = [&](int64_t c, opmath_t p) {
      const opmath_t* abc = coef + (n * a.classes + c) * 3;
      return grad_prob(abc[0], abc[1], pos.t(c), p, a.squared, a.soft);
    };
    auto p = [&](int64_t c) { return static_cast<opmath_t>(out[c * a.hw]); };
    opmath_t dot = 0;
    if (a.activation == kSoftmax) {
      for (int64_t c = 0; c < a.classes; ++c) dot += p(c) * grad_p(c, p(c));
    }
    // With the cross entropy: dL/dx_c = p_c·(g_c − dot + s·(f·T + G)) − s·(f·u_c + G·t_c);
    // the sigmoid focal term adds s·d(focal)/dx_c.
    const opmath_t s = a.ce.on ? a.ce_grad[n * 2] : opmath_t(0);
    opmath_t shift = -dot;
    CeCoefficients<opmath_t> coef{0, 0};
    if (a.ce.softmax_ce()) {
      const opmath_t lse =
          a.logits != nullptr
              ? softmax_stats<opmath_t>(a.classes,
                                        [&](int64_t c) { return static_cast<opmath_t>(a.logits[pos.offset(c)]); })
                    .lse()
              : opmath_t(0);
      const auto ce = pos.ce_sums(a.logits, lse);
      coef = ce_coefficients(a.ce, ce.a, ce.log_py);
      shift += s * (coef.f * ce.u + coef.g);
    }
    for (int64_t c = 0; c < a.classes; ++c) {
      const opmath_t pc = p(c), g = grad_p(c, pc);
      opmath_t d;
      if (a.activation != kSoftmax) {
        d = elementwise_vjp(a.activation, g, pc);
      } else {
        d = pc * (g + shift);
        if (a.ce.softmax_ce()) {
          const opmath_t tc = pos.t(c);
          d -= s * (coef.f * smoothed_weight(a.ce, c, tc, opmath_t(1)) + coef.g * tc);
        }
      }
      if (a.ce.sigmoid_focal() && c >= a.ce.first_class) {
        const opmath_t xc = static_cast<opmath_t>(a.logits[pos.offset(c)]);
        d += s * element_focal<true>(a.ce, c, xc, pos.t(c), opmath_t(1));
      }
      out[c * a.hw] = static_cast<scalar_t>(d);
    }
  });
}

struct CudaKernels {
  template <typename scalar_t, typename target_t>
  static void forward(const Args<scalar_t, target_t>& a, Tensor& sums, scalar_t* probs) {
    const cuda::DeviceGuard guard(sums);
    if (a.n * a.classes == 0) return;
    if (a.hw == 0) {  // no positions: every sum is 0
      torch::stable::zero_(sums);
      return;
    }
    const int64_t sms = cuda::multiprocessors();
    const bool few_blocks = a.n * ((a.hw + chunk_positions<4>() - 1) / chunk_positions<4>()) < 2 * sms;
    if (few_blocks) {
      sums_with<1>(a, sums, probs);
    } else {
      sums_with<4>(a, sums, probs);
    }
  }

  template <int P, typename scalar_t, typename target_t>
  static void sums_with(const Args<scalar_t, target_t>& a, Tensor& sums, scalar_t* probs) {
    using opmath_t = pair_math_t<scalar_t, target_t>;
    const int64_t chunks = (a.hw + chunk_positions<P>() - 1) / chunk_positions<P>();
    const int64_t per_sample = a.classes * 3 + (a.ce.on ? 2 : 0);
    const Tensor partial = empty({a.n * chunks * per_sample}, options(sums));
    const int blocks = static_cast<int>(std::min<int64_t>(a.n * chunks, int64_t(1) << 20));
    cuda::launch(blocks, partial_sums_kernel<P, scalar_t, target_t>, a, chunks, per_sample,
                 partial.mutable_data_ptr<opmath_t>(), probs);
    const SumsOut<opmath_t> out{sums.mutable_data_ptr<opmath_t>(), a.ce_out, a.classes * 3};
    cuda::launch(static_cast<int>(std::min<int64_t>(a.n * per_sample, 65535)), combine_chunks_kernel<opmath_t>,
                 partial.const_data_ptr<opmath_t>(), a.n, chunks, per_sample, out);
  }

  template <typename scalar_t, typename target_t>
  static void backward(const Args<scalar_t, target_t>& a, const Tensor& grad_sums, scalar_t* probs) {
    using opmath_t = pair_math_t<scalar_t, target_t>;
    const cuda::DeviceGuard guard(grad_sums);
    if (a.n * a.hw * a.classes == 0) return;
    cuda::launch_over(a.n * a.hw, backward_kernel<scalar_t, target_t>, a, grad_sums.const_data_ptr<opmath_t>(), probs);
  }
};

// The loss from the sums (math/overlap_score.h): a thread per (row, class) cell computes its score,
// or writes its gradient; a "mean"/"sum" is then one block adding the cells in a fixed tree.
template <typename S>
__global__ void cells_kernel(const S* sums, const S* class_weight, int64_t n, int64_t classes, ScoreParams<S> p,
                             S* cell_scores, const S* grad, S* grad_sums) {
  const Cells<S> cells(n, classes, p);
  cuda::for_each_element(cells.count, cells.scored, [&](int64_t, int64_t r, int64_t j) {
    S d[3];
    const int64_t c = cells.first + j;
    const S f = cell(sums, class_weight, n, classes, p, r, c, d);
    if (grad == nullptr) {
      cell_scores[r * cells.scored + j] = f;
    } else {
      cell_grad(d, n, classes, p, cells, r, c, grad, grad_sums);
    }
  });
}

template <typename S>
__global__ void total_kernel(const S* cell_scores, int64_t count, bool mean, S* loss) {
  S total = 0;
  for (int64_t i = threadIdx.x; i < count; i += cuda::kThreads) total += cell_scores[i];
  total = cuda::block_sum(total);
  if (threadIdx.x == 0) *loss = mean ? total / S(count > 0 ? count : 1) : total;
}

struct CudaScores {
  template <typename S>
  static void scores(const Tensor& sums, const Tensor& class_weight, const ScoreParams<S>& p, Tensor* loss,
                     const Tensor* grad, Tensor* grad_sums) {
    const cuda::DeviceGuard guard(sums);
    const S* w = class_weight.defined() ? class_weight.const_data_ptr<S>() : nullptr;
    const int64_t n = sums.size(0), classes = sums.size(1);
    const Cells<S> cells(n, classes, p);
    if (grad != nullptr) {
      torch::stable::zero_(*grad_sums);  // the background's, when it is not scored
      if (cells.count > 0)
        cuda::launch_over(cells.count, cells_kernel<S>, sums.const_data_ptr<S>(), w, n, classes, p, nullptr,
                          grad->const_data_ptr<S>(), grad_sums->mutable_data_ptr<S>());
      return;
    }
    const bool unreduced = p.reduction == Reduction::kNone;
    Tensor cell_scores = unreduced ? *loss : empty({cells.count}, options(sums));
    if (cells.count > 0)
      cuda::launch_over(cells.count, cells_kernel<S>, sums.const_data_ptr<S>(), w, n, classes, p,
                        cell_scores.mutable_data_ptr<S>(), nullptr, nullptr);
    if (!unreduced)
      cuda::launch(1, total_kernel<S>, cell_scores.const_data_ptr<S>(), cells.count, p.reduction == Reduction::kMean,
                   loss->mutable_data_ptr<S>());
  }
};

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(fastloss, CUDA, m) {
  m.impl("overlap_score", TORCH_BOX(&score_forward<CudaScores>));
  m.impl("overlap_score_backward", TORCH_BOX(&score_backward<CudaScores>));
  m.impl("overlap_sums", TORCH_BOX(&forward<CudaKernels>));
  m.impl("overlap_sums_backward_", TORCH_BOX(&backward<CudaKernels>));
  m.impl("overlap_ce_sums", TORCH_BOX(&ce_forward<CudaKernels>));
  m.impl("overlap_ce_sums_backward_", TORCH_BOX(&ce_backward<CudaKernels>));
}

}  // namespace fastloss::overlap
