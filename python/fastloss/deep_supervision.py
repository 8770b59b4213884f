"""fastloss.deep_supervision_loss: one loss over a network's outputs at decreasing resolutions
(nnU-Net's deep supervision; Isensee et al. 2021, Nature Methods 18:203).

Each level is one fused call of the loss (for dice_ce_loss: one softmax pass, its gradient written
in place), so the memory beyond the outputs is their gradients. The target is given once at full
resolution and brought to each level's size as nnU-Net's DownsampleSegForDSTransform does
(interpolate, mode "nearest-exact", on the labels as floats), or given per level.
"""

import torch

from .compound import dice_ce_loss


def nnunet_weights(levels):
    """nnU-Net's weights: 1/2^i, the lowest resolution's set to 0, normalised to sum 1 (one level: 1)."""
    if levels == 1:
        return [1.0]
    w = [1.0 / 2**i for i in range(levels)]
    w[-1] = 0.0
    total = sum(w)
    return [v / total for v in w]


def downsample_labels(target, size):
    """Labels (N, *spatial) or (N, 1, *spatial) at `size` (the spatial shape), nearest-exact, as
    nnU-Net's DownsampleSegForDSTransform (labels through float32 and back to their dtype)."""
    squeeze = target.dim() == len(size) + 1
    t = target.unsqueeze(1) if squeeze else target
    if tuple(t.shape[2:]) == tuple(size):
        return target
    out = torch.nn.functional.interpolate(t.float(), size=tuple(size), mode="nearest-exact").to(target.dtype)
    return out.squeeze(1) if squeeze else out


def deep_supervision_loss(inputs, target, *, loss=dice_ce_loss, weights=None, **options):
    """Σ_i w_i · loss(inputs[i], target_i, **options) over the levels with w_i ≠ 0.

    inputs: a list (or tuple) of logits (N, C, *spatial_i), the full resolution first.
    target: integer labels at the first level's resolution ((N, *spatial) or (N, 1, *spatial)),
        downsampled to each level as nnU-Net does; or a list with one target per level.
    loss: any fastloss loss of (input, target, **options) (default fastloss.dice_ce_loss).
    weights: one weight per level; default nnU-Net's (nnunet_weights).
    """
    if not isinstance(inputs, (list, tuple)) or len(inputs) == 0:
        raise ValueError("inputs must be a non-empty list of logits, the full resolution first")
    first = inputs[0]
    for i, x in enumerate(inputs):
        if not isinstance(x, torch.Tensor) or x.dim() != first.dim() or x.shape[:2] != first.shape[:2]:
            raise ValueError(
                f"inputs[{i}] must be logits (N, C, *spatial) with the first level's N, C and number of "
                f"dimensions {tuple(first.shape[:2])}, got "
                f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
            )
        if i > 0 and any(s > p for s, p in zip(x.shape[2:], inputs[i - 1].shape[2:])):
            raise ValueError(
                f"inputs must come at decreasing resolutions: inputs[{i}] is {tuple(x.shape[2:])} after "
                f"{tuple(inputs[i - 1].shape[2:])}"
            )
    levels = len(inputs)
    weights = nnunet_weights(levels) if weights is None else [float(w) for w in weights]
    if len(weights) != levels:
        raise ValueError(f"weights must have one value per level ({levels}), got {len(weights)}")
    if isinstance(target, (list, tuple)):
        if len(target) != levels:
            raise ValueError(
                f"target must be one tensor, or a list with one target per level ({levels}), got {len(target)}"
            )
        targets = list(target)
    else:
        if target.dtype.is_floating_point:
            raise ValueError(
                "a single target is downsampled as labels: give integer labels, or a list of targets (one per level)"
            )
        spatial = tuple(first.shape[2:])
        shape = tuple(target.shape[1:]) if target.dim() == first.dim() - 1 else tuple(target.shape[2:])
        if shape != spatial:
            raise ValueError(f"target must have the first level's spatial shape {spatial}, got {tuple(target.shape)}")
        targets = [downsample_labels(target, x.shape[2:]) for x in inputs]
    total = None
    for w, x, t in zip(weights, inputs, targets):
        if w == 0.0:
            continue
        term = w * loss(x, t, **options)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("at least one weight must be != 0")
    return total


__all__ = ["deep_supervision_loss", "nnunet_weights", "downsample_labels"]
