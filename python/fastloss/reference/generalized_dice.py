"""Generalized Dice's score from the overlap sums (Sudre et al. 2017, arXiv 1707.03237), in plain
torch: fastloss.generalized_dice_loss and the Dice + CE compound losses use it on the kernels' sums."""

import torch

W_TYPES = ("square", "simple", "uniform")


def class_weights(ground, w_type):
    """w_c = 1/(Σt)² ("square"), 1/Σt ("simple") or 1 ("uniform"); a class without ground truth takes
    the largest finite weight (of its sample, or of the batch), as MONAI."""
    w = {
        "simple": lambda: torch.reciprocal(ground),
        "square": lambda: torch.reciprocal(ground * ground),
        "uniform": lambda: torch.ones_like(ground),
    }[w_type]()
    infs = torch.isinf(w)
    w = torch.where(infs, torch.zeros_like(w), w)
    return w + infs * w.max(dim=-1, keepdim=True)[0]


def score_from_sums(sums, a, w_type):
    """Generalized Dice from the (N, C, 3) sums (after any all-reduce) with a's options, reduced."""
    if not a.include_background:
        sums = sums[:, 1:]
    if a.batch:
        sums = sums.sum(0, keepdim=True)
    tp, denominator, ground = sums[..., 0], sums[..., 1] + sums[..., 2], sums[..., 2]
    w = class_weights(ground.float(), w_type).to(tp.dtype)
    f = 1.0 - (2.0 * (tp * w).sum(1) + a.smooth_nr) / ((denominator * w).sum(1) + a.smooth_dr)
    return {"mean": f.mean, "sum": f.sum, "none": lambda: f}[a.reduction]()
