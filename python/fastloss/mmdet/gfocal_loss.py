"""mmdet's QualityFocalLoss and DistributionFocalLoss (mmdet/models/losses/gfocal_loss.py) on
fastloss.quality_focal_loss and fastloss.distribution_focal_loss."""

import torch

from .. import distribution_focal, quality_focal
from .._common import check_bool, check_number
from ._base import MMDetLoss, resolve_reduction, weight_reduce


def _row_weight(weight, rows):
    """mmdet weights these per-row losses with a (N,) weight."""
    if weight is not None and weight.shape != (rows,):
        raise ValueError(f"weight must have one value per row ({rows},), got shape {tuple(weight.shape)}")
    return weight


class QualityFocalLoss(MMDetLoss):
    """mmdet's QualityFocalLoss: (N, C) logits (probabilities with activated=True) against (label,
    score) — labels in [0, C) positive, any other background — or a dense target of pred's shape
    (positives where it is nonzero). The loss of a row is summed over its classes, as mmdet: "none"
    gives (N,), "mean" is over the N rows, weight is per row."""

    def __init__(self, use_sigmoid=True, beta=2.0, reduction="mean", loss_weight=1.0, activated=False):
        super().__init__(reduction, loss_weight)
        if use_sigmoid is not True:
            raise ValueError("QualityFocalLoss: use_sigmoid must be True (only sigmoid QFL exists in mmdet)")
        self.use_sigmoid = use_sigmoid
        self.beta = check_number("beta", beta)
        self.activated = check_bool("activated", activated)

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None):
        reduction = resolve_reduction(self, reduction_override)
        if pred.dim() != 2:
            raise ValueError(f"QualityFocalLoss: pred must have shape (N, C), got {tuple(pred.shape)}")
        if isinstance(target, (tuple, list)):
            target = tuple(target)
        elif isinstance(target, torch.Tensor):
            target = target.to(pred.dtype)  # mmdet's type_as(pred)
        logits = torch.logit(pred) if self.activated else pred
        weight = _row_weight(weight, pred.shape[0])

        def run(r):
            loss = quality_focal.quality_focal_loss(logits, target, beta=self.beta, reduction=r, weight=weight)
            return loss.sum(-1) if r == "none" else loss

        return self.scaled(weight_reduce(run, reduction, avg_factor, pred.shape[0]))

    def extra_repr(self):
        return f"use_sigmoid={self.use_sigmoid}, beta={self.beta}, activated={self.activated}, " + super().extra_repr()


class DistributionFocalLoss(MMDetLoss):
    """mmdet's DistributionFocalLoss: pred (N, n + 1) bin logits (reg_max = n), target (N,) in [0, n]
    (a ValueError outside it; mmdet's GFL head clamps to n − 0.01), weight per row, "mean" over the N
    rows."""

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None):
        reduction = resolve_reduction(self, reduction_override)
        weight = _row_weight(weight, target.numel()) if weight is not None and target.dim() == 1 else weight

        def run(r):
            return distribution_focal.distribution_focal_loss(pred, target, reduction=r, weight=weight)

        return self.scaled(weight_reduce(run, reduction, avg_factor, target.numel()))


__all__ = ["QualityFocalLoss", "DistributionFocalLoss"]
