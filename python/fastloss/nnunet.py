"""nnU-Net v2's DC_and_CE_loss and DeepSupervisionWrapper (nnunetv2/training/loss/) on fastloss's fused
Dice + cross entropy: nnU-Net's arguments and numbers.

DC_and_CE_loss returns nnU-Net's own value, weight_ce·CE + weight_dice·(−soft Dice): the Dice term is
the *negative* mean soft Dice, so the loss can be below 0. The soft Dice is its memory-efficient one
(MemoryEfficientSoftDiceLoss; SoftDiceLoss gives the same numbers):
    dc = (2·Σ p·y + smooth) / max(Σ y + Σ p + smooth, 1e-8)  per (sample, class), or per class over
    the batch with batch_dice; the background left out unless do_bg; its mean.
The softmax, the sums and the cross entropy come from one kernel pass (fastloss.compound).
"""

import torch

from . import compound
from ._torchscript import NotScriptable
from .deep_supervision import nnunet_weights

_DICE_KWARGS = {"batch_dice", "do_bg", "smooth", "ddp"}
_CE_KWARGS = {"weight", "ignore_index", "label_smoothing", "reduction"}
_DICE_CLASSES = ("SoftDiceLoss", "MemoryEfficientSoftDiceLoss")


class DC_and_CE_loss(NotScriptable, torch.nn.Module):
    """nnU-Net's Dice + cross entropy. soft_dice_kwargs: batch_dice (False), do_bg (True), smooth (1.0),
    ddp (True: with batch_dice, the sums are the global batch's when torch.distributed is initialised);
    ce_kwargs: torch's CrossEntropyLoss weight, ignore_index, label_smoothing, reduction ("mean"/"sum").
    Targets: labels (N, 1, *spatial), float or integer, as nnU-Net's."""

    def __init__(self, soft_dice_kwargs, ce_kwargs, weight_ce=1, weight_dice=1, ignore_label=None, dice_class=None):
        super().__init__()
        unknown = set(soft_dice_kwargs) - _DICE_KWARGS
        if unknown:
            raise TypeError(
                f"soft_dice_kwargs: unsupported keys {sorted(unknown)} (nnU-Net's soft Dice takes "
                f"{sorted(_DICE_KWARGS)}; the softmax is applied by the loss itself)"
            )
        unknown = set(ce_kwargs) - _CE_KWARGS
        if unknown:
            raise TypeError(f"ce_kwargs: unsupported keys {sorted(unknown)} (supported: {sorted(_CE_KWARGS)})")
        if dice_class is not None and getattr(dice_class, "__name__", None) not in _DICE_CLASSES:
            raise ValueError(
                f"dice_class must be nnU-Net's SoftDiceLoss or MemoryEfficientSoftDiceLoss (same "
                f"numbers), got {dice_class!r}"
            )
        self.batch_dice = bool(soft_dice_kwargs.get("batch_dice", False))
        self.do_bg = bool(soft_dice_kwargs.get("do_bg", True))
        self.smooth = float(soft_dice_kwargs.get("smooth", 1.0))
        self.ddp = bool(soft_dice_kwargs.get("ddp", True))
        ce_kwargs = dict(ce_kwargs)
        if ignore_label is not None:
            ce_kwargs["ignore_index"] = ignore_label
        reduction = ce_kwargs.get("reduction", "mean")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"ce_kwargs['reduction'] must be 'mean' or 'sum', got {reduction!r}")
        self.ce_reduction = reduction
        self.ce_ignore_index = int(ce_kwargs.get("ignore_index", -100))
        self.label_smoothing = float(ce_kwargs.get("label_smoothing", 0.0))
        weight = ce_kwargs.get("weight")
        self.register_buffer("ce_weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))
        self.weight_ce, self.weight_dice = weight_ce, weight_dice
        self.ignore_label = ignore_label

    def _process_group(self):
        dist = torch.distributed
        if self.ddp and self.batch_dice and dist.is_available() and dist.is_initialized():
            return dist.group.WORLD
        return None

    def forward(self, net_output, target):
        if target.dim() != net_output.dim() or target.shape[1] != 1:
            raise ValueError(
                f"target must be labels (b, 1, *spatial) for net_output {tuple(net_output.shape)}, got "
                f"{tuple(target.shape)}"
            )
        labels = target[:, 0].long()
        # nnU-Net leaves the ignore label out of both parts; without one, CE's ignore_index (-100) still
        # applies to the cross entropy, and the Dice would fail on such a label (here: a ValueError).
        ignore = self.ignore_label if self.ignore_label is not None else self.ce_ignore_index
        weight = None if self.ce_weight is None else self.ce_weight.to(net_output.device)
        c, sums, ce = compound.parts(
            net_output,
            labels,
            ce_weight=weight,
            label_smoothing=self.label_smoothing,
            include_background=True,
            batch=self.batch_dice,
            smooth_nr=self.smooth,
            smooth_dr=self.smooth,
            ignore_index=ignore,
            reduction=self.ce_reduction,
            process_group=self._process_group(),
            global_ce=False,
        )
        result = 0
        if self.weight_ce != 0:
            total, norm = ce[:, 0].sum(), ce[:, 1].sum()
            ce_loss = total if self.ce_reduction == "sum" else total / norm
            if self.ignore_label is not None:  # nnU-Net: no cross entropy when every position is ignored
                ce_loss = torch.where(norm > 0, ce_loss, torch.zeros_like(ce_loss))
            result = self.weight_ce * ce_loss
        if self.weight_dice != 0:
            result = result + self.weight_dice * self._dice(sums)
        return result

    def _dice(self, sums):
        """−mean soft Dice from the (N, C, 3) sums (nnU-Net's formula, its clamp included)."""
        if not self.do_bg:
            sums = sums[:, 1:]
        if self.batch_dice:
            sums = sums.sum(0)
        intersect, sum_pred, sum_gt = sums.unbind(-1)
        dc = (2 * intersect + self.smooth) / (sum_gt + sum_pred + self.smooth).clamp_min(1e-8)
        return -dc.mean()


class DeepSupervisionWrapper(NotScriptable, torch.nn.Module):
    """nnU-Net's DeepSupervisionWrapper: Σ_i w_i · loss(args[0][i], args[1][i], ...) over w_i ≠ 0.
    nnU-Net's trainer weights: fastloss.nnunet.nnunet_weights(levels); targets per level: nnU-Net
    makes them with DownsampleSegForDSTransform (fastloss.deep_supervision.downsample_labels)."""

    def __init__(self, loss, weight_factors=None):
        super().__init__()
        if weight_factors is not None and not any(w != 0 for w in weight_factors):
            raise ValueError("At least one weight factor should be != 0.0")
        self.weight_factors = None if weight_factors is None else tuple(weight_factors)
        self.loss = loss

    def forward(self, *args):
        if not all(isinstance(a, (tuple, list)) for a in args):
            raise TypeError(f"all args must be either tuple or list, got {[type(a) for a in args]}")
        weights = (1,) * len(args[0]) if self.weight_factors is None else self.weight_factors
        return sum(weights[i] * self.loss(*inputs) for i, inputs in enumerate(zip(*args)) if weights[i] != 0.0)


__all__ = ["DC_and_CE_loss", "DeepSupervisionWrapper", "nnunet_weights"]
