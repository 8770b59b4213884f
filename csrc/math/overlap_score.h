#pragma once
// The overlap losses from their (N, C, 3) sums S_pt = tp, S_p, S_t (math/overlap.h makes them), with
// MONAI's formulas, per (sample, class):
//   Dice     f = 1 − (2·tp + s_nr) / (S_p + S_t + s_dr)
//   Jaccard  f = 1 − (2·tp + s_nr) / (2·(S_p + S_t − tp) + s_dr)
//   Tversky  f = (1 − TI)^γ,  TI = (tp + s_nr) / (tp + α·(S_p − tp) + β·(S_t − tp) + s_dr)
// (1 − TI clamped at 0 for γ ≠ 1, where rounding can leave it a hair below), then class weights and
// the reduction over the (sample, class) matrix — or over classes, with the batch summed first — and
// the derivatives a = dL/dS_pt, b = dL/dS_p, c = dL/dS_t that the per-element backward needs. The
// matrix is tiny (N × C), so one thread walks it, on either device, in a fixed order.
// (Reduction:: is spelled out: math/overlap.h has its own kNone, the "none" activation.)
#include <cstdint>
#include "common/reduction.h"
#include "math/modulating_factor.h"
#include "math/ops.h"

namespace fastloss::overlap {

enum Loss : int { kDice = 0, kTversky = 1 };  // codes shared with python/fastloss/overlap.py

template <typename S>
struct ScoreParams {
  int loss;
  bool jaccard;
  S smooth_nr, smooth_dr, alpha, beta, gamma;
  int gamma_kind;
  bool include_background, batch;
  int64_t reduction;
};

// f of one (sample, class) and df/dtp, df/dS_p, df/dS_t.
template <typename S>
FASTLOSS_HD S score(S tp, S sp, S st, const ScoreParams<S>& p, S& d_tp, S& d_sp, S& d_st) {
  if (p.loss == kDice) {
    const S num = S(2) * tp + p.smooth_nr;
    const S den = p.jaccard ? S(2) * (sp + st - tp) + p.smooth_dr : sp + st + p.smooth_dr;
    const S q = num / (den * den), k = p.jaccard ? S(2) : S(1);  // d den / d S_p = d den / d S_t = k
    d_tp = -(S(2) / den + (p.jaccard ? S(2) * q : S(0)));
    d_sp = d_st = k * q;
    return S(1) - num / den;
  }
  const S num = tp + p.smooth_nr;
  const S den = tp + p.alpha * (sp - tp) + p.beta * (st - tp) + p.smooth_dr;
  const S q = num / (den * den);
  // f = 1 − TI: df/dtp = −(1/den − num·(1 − α − β)/den²), df/dS_p = num·α/den², df/dS_t = num·β/den²
  d_tp = -(S(1) / den - q * (S(1) - p.alpha - p.beta));
  d_sp = q * p.alpha;
  d_st = q * p.beta;
  S f = S(1) - num / den;
  if (p.gamma != S(1)) {
    f = f < S(0) ? S(0) : f;  // (NaN stays NaN, as torch's clamp)
    const S chain = p.gamma * pow_gamma_minus_one(f, p.gamma, p.gamma_kind);
    d_tp *= chain;
    d_sp *= chain;
    d_st *= chain;
    f = pow_gamma(f, p.gamma, p.gamma_kind);
  }
  return f;
}

// The scores form a rows × scored matrix: rows = n (one per sample) or 1 (batch: the samples' sums
// added first, in order); scored = classes without the background when include_background is off.
template <typename S>
struct Cells {
  int64_t first, scored, rows, count;
  FASTLOSS_HD Cells(int64_t n, int64_t classes, const ScoreParams<S>& p)
      : first(p.include_background ? 0 : 1),
        scored(classes - (p.include_background ? 0 : 1)),
        rows(p.batch ? 1 : n),
        count((p.batch ? 1 : n) * (classes - (p.include_background ? 0 : 1))) {}
};

// Cell (r, c): the weighted score f and its derivatives d = (df/dS_pt, df/dS_p, df/dS_t).
template <typename S>
FASTLOSS_HD S cell(const S* sums, const S* class_weight, int64_t n, int64_t classes, const ScoreParams<S>& p, int64_t r,
                   int64_t c, S (&d)[3]) {
  const int64_t first = p.include_background ? 0 : 1;
  S s[3] = {0, 0, 0};  // with batch, summed over the samples in order
  for (int64_t m = p.batch ? 0 : r; m < (p.batch ? n : r + 1); ++m)
    for (int k = 0; k < 3; ++k) s[k] += sums[(m * classes + c) * 3 + k];
  const S w = class_weight == nullptr ? S(1) : class_weight[c - first];
  const S f = w * score(s[0], s[1], s[2], p, d[0], d[1], d[2]);
  for (int k = 0; k < 3; ++k) d[k] *= w;
  return f;
}

// The gradient of cell (r, c) into grad_sums (every sample of the row: all of them with batch);
// `grad` is the loss's gradient ((n, C') or (C',) for "none", else one number).
template <typename S>
FASTLOSS_HD void cell_grad(const S (&d)[3], int64_t n, int64_t classes, const ScoreParams<S>& p, const Cells<S>& cells,
                           int64_t r, int64_t c, const S* grad, S* grad_sums) {
  S g = p.reduction == Reduction::kNone ? grad[r * cells.scored + (c - cells.first)] : grad[0];
  if (p.reduction == Reduction::kMean) g /= S(cells.count > 0 ? cells.count : 1);
  for (int64_t m = p.batch ? 0 : r; m < (p.batch ? n : r + 1); ++m)
    for (int k = 0; k < 3; ++k) grad_sums[(m * classes + c) * 3 + k] = g * d[k];
}

// Loss of the (n, classes, 3) sums into `loss` (the scores for reduction "none": (n, C') or (C',)
// with batch; else one number), or, with `grad` given (the loss's gradient, same layout), the
// gradient of the sums into `grad_sums` (n, classes, 3) — by one thread, cell by cell in order.
template <typename S>
FASTLOSS_HD void scores(const S* sums, const S* class_weight, int64_t n, int64_t classes, const ScoreParams<S>& p,
                        S* loss, const S* grad, S* grad_sums) {
  const Cells<S> cells(n, classes, p);
  if (grad_sums != nullptr)
    for (int64_t i = 0; i < n * classes * 3; ++i) grad_sums[i] = S(0);
  S total = 0;
  for (int64_t r = 0; r < cells.rows; ++r) {
    for (int64_t c = cells.first; c < classes; ++c) {
      S d[3];
      const S f = cell(sums, class_weight, n, classes, p, r, c, d);
      if (grad == nullptr) {
        if (p.reduction == Reduction::kNone) loss[r * cells.scored + (c - cells.first)] = f;
        total += f;
      } else {
        cell_grad(d, n, classes, p, cells, r, c, grad, grad_sums);
      }
    }
  }
  if (grad == nullptr && p.reduction != Reduction::kNone)
    *loss = p.reduction == Reduction::kMean ? total / S(cells.count > 0 ? cells.count : 1) : total;
}

}  // namespace fastloss::overlap
