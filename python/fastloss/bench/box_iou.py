"""Benchmark cases of the IoU family: 1M aligned box pairs (a detector's positive anchors over a
batch), pred near target, the mean loss; torchvision where it has the loss."""

import torch

from .. import box_iou_loss as fused
from ..reference import box_iou as reference
from . import Case, register

PAIRS = 1_000_000


def box_pairs(device, dtype, small):
    n = 1000 if small else PAIRS
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 800
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * 200 + 4
    target = torch.cat([xy, xy + wh], -1)
    pred = target + torch.randn(n, 4, generator=g, dtype=torch.float64) * wh.repeat(1, 2) * 0.2
    return {
        "pred": pred.to(device=device, dtype=dtype).requires_grad_(),
        "target": target.to(device=device, dtype=dtype),
    }


def _mean(fn):
    return lambda pred, target: fn(pred, target, "mean")


try:
    from torchvision import ops as tv_ops

    TORCHVISION = {
        "giou": tv_ops.generalized_box_iou_loss,
        "diou": tv_ops.distance_box_iou_loss,
        "ciou": tv_ops.complete_box_iou_loss,
    }
except (ImportError, RuntimeError):  # absent, or built for another torch
    TORCHVISION = {}

for kind in [k for k in reference.KINDS if k + "_loss" in reference.__all__]:  # the public functions
    name = kind + "_loss"
    peers = {"torchvision": _mean(TORCHVISION[kind])} if kind in TORCHVISION else {}
    register(
        Case(
            name=f"{name} {PAIRS // 1000}k pairs",
            make_inputs=box_pairs,
            grad=("pred",),
            fastloss=_mean(getattr(fused, name)),
            reference=_mean(getattr(reference, name)),
            peers=peers,
        )
    )


def mixed_pairs(device, dtype, small):
    """float16 predictions against float32 targets (AMP); the bench's --dtype does not apply."""
    pairs = box_pairs(device, torch.float32, small)
    return {"pred": pairs["pred"].detach().half().requires_grad_(), "target": pairs["target"]}


register(
    Case(
        name=f"giou_loss fp16+fp32 {PAIRS // 1000}k pairs",
        make_inputs=mixed_pairs,
        grad=("pred",),
        fastloss=_mean(fused.giou_loss),
        reference=_mean(reference.giou_loss),
        peers={"torchvision": _mean(TORCHVISION["giou"])} if TORCHVISION else {},
        dtypes=(torch.float16,),
    )
)
