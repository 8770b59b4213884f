"""mmdet's CrossEntropyLoss (mmdet/models/losses/cross_entropy_loss.py): softmax cross entropy on
fastloss.softmax_focal_loss (γ = 0), binary cross entropy (use_sigmoid) and Mask R-CNN's per-class
mask BCE (use_mask) on fastloss.sigmoid_focal_loss (γ = 0, no α)."""

import warnings

import torch

from .. import sigmoid_focal, softmax_focal
from .._common import check_bool
from ._base import MMDetLoss, resolve_reduction, weight_reduce


class CrossEntropyLoss(MMDetLoss):
    """mmdet's CrossEntropyLoss with its arguments and numbers: "mean" divides by the number of
    positions N (ignored ones included) — or, with avg_non_ignore=True, by the number not ignored
    (+ eps, so all-ignored gives 0); class_weight is a plain list (as in mmdet's configs and
    checkpoints), made a tensor on the scores' device once per device and dtype."""

    def __init__(
        self,
        use_sigmoid=False,
        use_mask=False,
        reduction="mean",
        class_weight=None,
        ignore_index=None,
        loss_weight=1.0,
        avg_non_ignore=False,
    ):
        super().__init__(reduction, loss_weight)
        if use_sigmoid and use_mask:
            raise ValueError("CrossEntropyLoss: use_sigmoid and use_mask cannot both be True")
        self.use_sigmoid = check_bool("use_sigmoid", use_sigmoid)
        self.use_mask = check_bool("use_mask", use_mask)
        self.class_weight = class_weight
        self.ignore_index = ignore_index
        self.avg_non_ignore = check_bool("avg_non_ignore", avg_non_ignore)
        if ignore_index is not None and not avg_non_ignore and reduction == "mean":
            warnings.warn(
                "CrossEntropyLoss: with ignore_index and avg_non_ignore=False (mmdet's default) the "
                "'mean' divides by every position, ignored ones included; set avg_non_ignore=True to "
                "average over the positions not ignored, as torch's cross_entropy does",
                stacklevel=2,
            )
        self._class_weight_tensors = {}

    def extra_repr(self):
        return f"avg_non_ignore={self.avg_non_ignore}"

    def class_weight_for(self, scores):
        if self.class_weight is None:
            return None
        key = (scores.device, scores.dtype)
        if key not in self._class_weight_tensors:
            self._class_weight_tensors[key] = scores.new_tensor(self.class_weight)
        return self._class_weight_tensors[key]

    def __getstate__(self):  # the per-device cache is not part of the module's state
        state = self.__dict__.copy()
        state["_class_weight_tensors"] = {}
        return state

    def forward(
        self, cls_score, label, weight=None, avg_factor=None, reduction_override=None, ignore_index=None, **kwargs
    ):
        reduction = resolve_reduction(self, reduction_override)
        if ignore_index is None:
            ignore_index = self.ignore_index
        class_weight = self.class_weight_for(cls_score)
        if self.use_mask:
            return self.scaled(
                mask_cross_entropy(cls_score, label, weight, reduction, avg_factor, class_weight, ignore_index)
            )
        ignore_index = -100 if ignore_index is None else ignore_index
        if self.use_sigmoid:
            loss = binary_cross_entropy(
                cls_score, label, weight, reduction, avg_factor, class_weight, ignore_index, self.avg_non_ignore
            )
        else:
            loss = cross_entropy(
                cls_score, label, weight, reduction, avg_factor, class_weight, ignore_index, self.avg_non_ignore
            )
        return self.scaled(loss)


def _kept_count(label, ignore_index):
    """The number of labels not ignored, as a tensor (mmdet reads it with .item(): a host sync)."""
    return (label != ignore_index).sum()


def cross_entropy(pred, label, weight, reduction, avg_factor, class_weight, ignore_index, avg_non_ignore):
    if avg_factor is None and avg_non_ignore and reduction == "mean":
        avg_factor = _kept_count(label, ignore_index)
    if weight is not None:
        weight = weight.float()

    def run(r):
        return softmax_focal.softmax_focal_loss(
            pred, label, alpha=class_weight, gamma=0.0, ignore_index=ignore_index, reduction=r, weight=weight
        )

    return weight_reduce(run, reduction, avg_factor, label.numel())


def binary_cross_entropy(pred, label, weight, reduction, avg_factor, class_weight, ignore_index, avg_non_ignore):
    """mmdet's sigmoid form. class_weight is BCE's pos_weight p_c: −[p_c·t·log σ(x) + (1 − t)·log(1 − σ(x))]
    = BCE(x, t) + (p_c − 1)·t·softplus(−x), the second term the kernel's BCE against 1 weighted by
    (p_c − 1)·t (materialised only when class_weight is given)."""
    positives = None  # t as a float tensor, for the pos_weight term
    if pred.dim() != label.dim():
        # labels (N,): one-hot over pred's C classes inside the kernel; negative labels and ignore_index
        # are ignored (mmdet's valid mask), labels >= C are background
        valid = (label >= 0) & (label != ignore_index)
        label = label.masked_fill(~valid, ignore_index)
        count_valid = valid.sum() * pred.shape[-1]
        element_weight = weight
        if class_weight is not None:
            positives = (label.unsqueeze(-1) == torch.arange(pred.shape[-1], device=label.device)).to(pred.dtype)
            row_weight = valid.to(pred.dtype) if weight is None else weight * valid
            positives = positives * row_weight.unsqueeze(-1)
    else:
        valid = ((label >= 0) & (label != ignore_index)).float()
        element_weight = valid if weight is None else weight * valid
        label = label.float()
        count_valid = valid.sum()
        ignore_index = -100
        if class_weight is not None:
            positives = label * element_weight
    if avg_factor is None and avg_non_ignore and reduction == "mean":
        avg_factor = count_valid
    if element_weight is not None:
        element_weight = element_weight.float()

    def run(r):
        loss = sigmoid_focal.sigmoid_focal_loss(
            pred, label, -1, 0.0, r, weight=element_weight, ignore_index=ignore_index
        )
        if positives is not None:
            extra = (positives * (class_weight.to(pred.dtype) - 1)).float()
            loss = loss + sigmoid_focal.sigmoid_focal_loss(pred, torch.ones_like(pred), -1, 0.0, r, weight=extra)
        return loss

    return weight_reduce(run, reduction, avg_factor, pred.numel())


def mask_cross_entropy(pred, target, label, reduction, avg_factor, class_weight, ignore_index):
    """Mask R-CNN's loss: BCE of each RoI's mask logits of its own class, "mean" over every pixel."""
    if ignore_index is not None:
        raise ValueError("CrossEntropyLoss(use_mask=True) does not support ignore_index")
    if reduction != "mean" or avg_factor is not None:
        raise ValueError("CrossEntropyLoss(use_mask=True) supports only reduction='mean' without avg_factor")
    rois = torch.arange(pred.shape[0], dtype=torch.long, device=pred.device)
    pred_slice = pred[rois, label].squeeze(1)
    return sigmoid_focal.sigmoid_focal_loss(pred_slice, target, -1, 0.0, "mean", weight=class_weight)[None]


__all__ = ["CrossEntropyLoss"]
