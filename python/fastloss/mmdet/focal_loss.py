"""mmdet's FocalLoss (mmdet/models/losses/focal_loss.py) on fastloss.sigmoid_focal_loss."""

import torch

from .. import sigmoid_focal
from .._common import INT64_MIN, check_bool, check_number
from ._base import MMDetLoss, resolve_reduction, weight_reduce


def mmdet_weight(weight, pred):
    """mmdet's reshaping of a focal-loss weight: one per anchor (N,) → (N, 1), or the loss's elements
    in any shape → (N, C)."""
    if weight is None or weight.shape == pred.shape:
        return weight
    if weight.shape[0] == pred.shape[0]:
        weight = weight.view(-1, 1)
    elif weight.numel() == pred.numel():
        weight = weight.view(pred.shape[0], -1)
    else:
        raise ValueError(
            f"weight must have one value per anchor ({pred.shape[0]},) or per element "
            f"{tuple(pred.shape)}, got shape {tuple(weight.shape)}"
        )
    if weight.dim() != pred.dim():
        raise ValueError(f"weight of shape {tuple(weight.shape)} does not match pred of shape {tuple(pred.shape)}")
    return weight


class FocalLoss(MMDetLoss):
    """mmdet's FocalLoss(use_sigmoid=True): the sigmoid focal loss of (N, C) logits against labels (N,)
    (label C or any label outside [0, C): background) or a one-hot target of pred's shape, float or
    integer. activated=True takes probabilities instead of logits (mmdet's py_focal_loss_with_prob):
    they enter the kernel as logits, torch.logit(pred)."""

    def __init__(self, use_sigmoid=True, gamma=2.0, alpha=0.25, reduction="mean", loss_weight=1.0, activated=False):
        super().__init__(reduction, loss_weight)
        if use_sigmoid is not True:
            raise ValueError("FocalLoss: use_sigmoid must be True (mmdet's FocalLoss is the sigmoid focal loss only)")
        self.use_sigmoid = use_sigmoid
        self.gamma = check_number("gamma", gamma)
        self.alpha = check_number("alpha", alpha)
        self.activated = check_bool("activated", activated)

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None):
        reduction = resolve_reduction(self, reduction_override)
        if isinstance(target, torch.Tensor) and target.dim() == pred.dim() and not target.dtype.is_floating_point:
            target = target.to(pred.dtype)  # an integer one-hot target, as mmdet's type_as(pred)
        logits = torch.logit(pred) if self.activated else pred
        weight = mmdet_weight(weight, pred)

        def run(r):
            # no label is ignored: every label outside [0, C) is background, as mmcv's kernel reads it
            return sigmoid_focal.sigmoid_focal_loss(
                logits, target, self.alpha, self.gamma, r, weight=weight, ignore_index=INT64_MIN
            )

        return self.scaled(weight_reduce(run, reduction, avg_factor, pred.numel()))

    def extra_repr(self):
        return (
            f"use_sigmoid={self.use_sigmoid}, gamma={self.gamma}, alpha={self.alpha}, "
            f"activated={self.activated}, " + super().extra_repr()
        )


__all__ = ["FocalLoss"]
