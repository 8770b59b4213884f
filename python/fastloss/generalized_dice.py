"""fastloss.generalized_dice_loss: Generalized Dice (Sudre et al. 2017, arXiv 1707.03237) on the fused
overlap sums.

The kernel pass is fastloss::overlap_sums (one pass over the logits, the activation fused in; see
fastloss.overlap); the score is a few operations on the (N, C, 3) sums, here in torch, so its
gradient reaches the kernel's in-place backward through the sums.
"""

from . import overlap
from .reference.overlap import global_sums
from ._common import check_choice

W_TYPES = ("square", "simple", "uniform")


def class_weights(ground, w_type):
    """w_c = 1/(Σt)² ("square"), 1/Σt ("simple") or 1 ("uniform"); a class without ground truth takes
    the largest finite weight (of its sample, or of the batch), as MONAI."""
    import torch

    w = {
        "simple": lambda: torch.reciprocal(ground),
        "square": lambda: torch.reciprocal(ground * ground),
        "uniform": lambda: torch.ones_like(ground),
    }[w_type]()
    infs = torch.isinf(w)
    w = torch.where(infs, torch.zeros_like(w), w)
    return w + infs * w.max(dim=-1, keepdim=True)[0]


def generalized_dice_loss(
    input,
    target,
    *,
    w_type="square",
    activation="softmax",
    include_background=True,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    batch=False,
    ignore_index=None,
    reduction="mean",
    soft_label=False,
    process_group=None,
):
    """Generalized Dice loss: per sample (or over the batch with batch=True),

        1 − (2·Σ_c w_c·tp_c + smooth_nr) / (Σ_c w_c·(Σp + Σt)_c + smooth_dr),  w_c from Σt (w_type)

    with MONAI's GeneralizedDiceLoss numbers. input, target, activation, include_background,
    ignore_index, soft_label: as fastloss.dice_loss. reduction: "mean" | "sum" over the samples, or
    "none": (N,) — (1,) with batch=True. process_group (batch=True): the sums, hence the class weights,
    are the global batch's across the ranks (fastloss.distributed).
    """
    check_choice("w_type", w_type, {w: w for w in W_TYPES})
    sums, a = overlap.sums(
        input,
        target,
        activation=activation,
        include_background=include_background,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        batch=batch,
        ignore_index=ignore_index,
        reduction=reduction,
        soft_label=soft_label,
        process_group=process_group,
    )
    return score_from_sums(global_sums(sums, a), a, w_type)


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


__all__ = ["generalized_dice_loss"]
