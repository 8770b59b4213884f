"""MONAI's FocalLoss (monai/losses/focal_loss.py) on fastloss's sigmoid and softmax focal kernels.

Channels first, (N, C, *spatial). Targets: one-hot (or multi-label) floats of the input's shape, or
labels (N, 1, *spatial) with to_onehot_y=True. MONAI writes its focal term for 0/1 targets only (a
soft target gets a different factor there than in Lin et al.), so a float target must be 0/1: checked
as fastloss checks values (ValueError on CPU, device-side assert on CUDA, no host sync).
"""

import warnings

import torch

from .. import sigmoid_focal, softmax_focal
from .._common import check_bool, check_number, check_reduction, check_values
from .._torchscript import NotScriptable
from ._common import single_channel


class FocalLoss(NotScriptable, torch.nn.Module):
    """MONAI's FocalLoss: sigmoid (default) or softmax (use_softmax=True) focal loss, alpha a number or
    one value per class, weight the class weights, reduction "mean" over every element, "sum" of the
    per-(sample, class) spatial means, "none" the element losses (N, C, *spatial)."""

    def __init__(
        self,
        include_background=True,
        to_onehot_y=False,
        gamma=2.0,
        alpha=None,
        weight=None,
        reduction="mean",
        use_softmax=False,
        ignore_index=None,
    ):
        super().__init__()
        self.include_background = check_bool("include_background", include_background)
        self.to_onehot_y = check_bool("to_onehot_y", to_onehot_y)
        self.gamma = check_number("gamma", gamma)
        self.weight = weight
        self.use_softmax = check_bool("use_softmax", use_softmax)
        if alpha is None or isinstance(alpha, torch.Tensor) or not isinstance(alpha, (float, int)):
            self.alpha = None if alpha is None else torch.as_tensor(alpha)
        else:
            self.alpha = float(alpha)
        self.register_buffer("class_weight", None if weight is None else torch.as_tensor(weight))
        self.reduction = check_reduction(reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        classes = input.shape[1]
        labels = None  # (N, *spatial) integer labels when the target is (or becomes) labels
        keep = None  # MONAI's ignore mask (N, 1, *spatial)
        if self.ignore_index is not None:
            if target.shape[1] != 1:
                raise NotImplementedError("ignore_index needs label targets (N, 1, *spatial) in fastloss.monai")
            keep = target != self.ignore_index
        if self.to_onehot_y:
            if classes == 1:
                single_channel("to_onehot_y=True")
            else:
                labels = target[:, 0].long()
                if keep is not None:  # ignored positions become class 0, masked below (as MONAI)
                    labels = labels.masked_fill(~keep[:, 0], 0)
        if labels is None:
            target = target.to(input.dtype) if not target.dtype.is_floating_point else target
            if target.shape != input.shape:
                raise ValueError(
                    f"ground truth has different shape ({tuple(target.shape)}) from input ({tuple(input.shape)})"
                )
            check_values(
                (target != 0) & (target != 1),
                lambda read: "target must be 0 or 1 (MONAI's focal term is defined for 0/1 targets)",
            )
        include_background = self.include_background
        if not include_background and classes == 1:
            single_channel("include_background=False")
            include_background = True
        if self.use_softmax:
            loss = self._softmax(input, target, labels, include_background, keep)
        else:
            loss = self._sigmoid(input, target, labels, include_background, keep)
        return loss

    def _class_factor(self, scored, device, dtype, alpha_fac=None):
        """alpha (a tensor per class) times the class weights, (scored,) — or None."""
        factor = alpha_fac
        if self.class_weight is not None:
            cw = self.class_weight.to(device=device, dtype=dtype)
            if cw.dim() > 0:
                if scored == 1:
                    raise ValueError("Per-class class_weight is not supported for single-channel outputs.")
                if cw.numel() != scored:
                    raise ValueError(
                        f"The number of class_weight ({cw.numel()}) must match the number of output "
                        f"channels ({scored})."
                    )
            if (cw < 0).any():
                raise ValueError("class_weight values must be non-negative.")
            cw = cw.expand(scored)
            factor = cw if factor is None else factor * cw
        return factor

    def _reduce(self, loss, keep):
        """MONAI's reductions of the element losses (N, C, *spatial)."""
        spatial = list(range(2, loss.dim()))
        eps = torch.finfo(torch.float32).eps
        if self.reduction == "none":
            return loss
        if self.reduction == "mean":
            if keep is not None:
                return loss.sum() / keep.sum().to(loss.dtype).clamp(min=eps)
            return loss.mean()
        if keep is not None:
            return (
                loss.sum(dim=spatial, keepdim=True) / keep.to(loss.dtype).sum(dim=spatial, keepdim=True).clamp(min=eps)
            ).sum()
        # MONAI's mean over the spatial dimensions; without any, torch's mean(dim=[]) is over everything
        return loss.mean(dim=spatial).sum() if spatial else loss.mean()

    def _sigmoid(self, input, target, labels, include_background, keep):
        if labels is not None:  # MONAI's one_hot target, channels first
            target = torch.nn.functional.one_hot(labels, input.shape[1]).movedim(-1, 1).to(input.dtype)
        if not include_background:
            input, target = input[:, 1:], target[:, 1:]
        scored = input.shape[1]
        shape = [1, scored] + [1] * (input.dim() - 2)
        alpha, weight = -1.0, None
        if isinstance(self.alpha, float):
            alpha = self.alpha
        elif self.alpha is not None:  # per class: the positives' weight, negatives 1
            a = self.alpha.to(device=input.device, dtype=input.dtype)
            if a.shape[0] != scored:
                raise ValueError(f"The length of alpha ({a.shape[0]}) must match the number of classes ({scored}).")
            weight = torch.where(target == 1, a.view(shape), torch.ones((), dtype=input.dtype, device=input.device))
        factor = self._class_factor(scored, input.device, input.dtype)
        if factor is not None:
            factor = factor.view(shape)
            weight = factor if weight is None else weight * factor
        if keep is not None:
            weight = keep.to(input.dtype) if weight is None else weight * keep
        # MONAI computes in float32 (input.float()), float64 inputs included
        loss = sigmoid_focal.sigmoid_focal_loss(
            input.float(), target.float(), alpha, self.gamma, "none", weight=None if weight is None else weight.float()
        )
        return self._reduce(loss, keep)

    def _softmax(self, input, target, labels, include_background, keep):
        if labels is None:  # a one-hot target: its labels (checked 0/1 above; one class per position)
            check_values(target.sum(1) != 1, lambda read: "with use_softmax=True a float target must be one-hot")
            labels = target.argmax(1)
        classes = input.shape[1]
        alpha_fac = None
        alpha = self.alpha
        if not include_background:
            input = input[:, 1:]
            labels = labels - 1  # background positions (-1) add nothing, as their all-zero target row
            if isinstance(alpha, float):
                alpha = None
                warnings.warn("`include_background=False`, scalar `alpha` ignored when using softmax.", stacklevel=3)
        scored = input.shape[1]
        if isinstance(alpha, float):
            alpha_fac = torch.tensor([1 - alpha] + [alpha] * (classes - 1), dtype=torch.float32, device=input.device)
        elif alpha is not None:
            if alpha.shape[0] != scored:
                raise ValueError(f"The length of alpha ({alpha.shape[0]}) must match the number of classes ({scored}).")
            alpha_fac = alpha.to(device=input.device, dtype=torch.float32)
        factor = self._class_factor(scored, input.device, torch.float32, alpha_fac)
        ignore = -1
        if keep is not None:
            labels = labels.masked_fill(~keep[:, 0], ignore)
        x = input.float()  # MONAI computes in float32, float64 inputs included
        per_position = softmax_focal.softmax_focal_loss(
            x, labels, alpha=factor, gamma=self.gamma, ignore_index=ignore, reduction="none"
        )
        if self.reduction == "none":  # MONAI's element losses: in the label's channel, zeros elsewhere
            kept = labels != ignore
            return torch.zeros(x.shape, dtype=per_position.dtype, device=x.device).scatter(
                1, labels.clamp(min=0).unsqueeze(1), torch.where(kept, per_position, 0).unsqueeze(1)
            )
        # the reductions straight from the per-position losses (the other channels' elements are 0)
        eps = torch.finfo(torch.float32).eps
        if self.reduction == "mean":
            count = keep.sum().float().clamp(min=eps) if keep is not None else x.numel()
            return per_position.sum() / count
        if keep is not None:
            per_sample = per_position.reshape(x.shape[0], -1).sum(1)
            return (per_sample / keep.reshape(x.shape[0], -1).sum(1).float().clamp(min=eps)).sum()
        if per_position.dim() == 1:  # no spatial dimension: MONAI's mean(dim=[]) is over every element
            return per_position.sum() / max(x.numel(), 1)
        return per_position.sum() / max(per_position[0].numel(), 1)


__all__ = ["FocalLoss"]
