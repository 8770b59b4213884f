"""Benchmark cases of the compound segmentation losses: Dice + cross entropy with a softmax over 14
classes of 2 × 128³ volumes (3-D, nnU-Net-like) and over 21 classes of 8 × 256² maps (2-D), and
MONAI's Dice (softmax) + sigmoid focal on the 2-D maps; labels as targets. MONAI's DiceCELoss and
DiceFocalLoss are the peers here; nnU-Net's DC_and_CE_loss joins through scripts/bench_peers.py
(loaded from its wheel, as the tests do)."""

import torch

from .. import dice_ce_loss, dice_focal_loss, reference
from . import Case, register

SHAPES = {"3d": (2, 14, 128, 128, 128), "2d": (8, 21, 256, 256)}
SMALL = {"3d": (2, 4, 5, 6, 7), "2d": (2, 5, 9, 13)}


def labelled(kind):
    def make(device, dtype, small):
        shape = (SMALL if small else SHAPES)[kind]
        g = torch.Generator().manual_seed(0)
        labels = torch.randint(0, shape[1], (shape[0],) + shape[2:], generator=g)
        x = (torch.randn(shape, generator=g) * 2).to(device=device, dtype=dtype)
        return {"input": x.requires_grad_(), "target": labels.to(device)}

    return make


def _monai(name):
    try:
        from monai import losses
    except (ImportError, RuntimeError):  # absent, or built for another torch
        return None
    loss = getattr(losses, name)(softmax=True, to_onehot_y=True)
    return lambda input, target: loss(input, target.unsqueeze(1))


monai = _monai("DiceCELoss")
monai_focal = _monai("DiceFocalLoss")

for kind, shape in SHAPES.items():
    register(
        Case(
            name="dice_ce softmax " + "x".join(map(str, shape)),
            make_inputs=labelled(kind),
            grad=("input",),
            fastloss=lambda input, target: dice_ce_loss(input, target),
            reference=lambda input, target: reference.dice_ce_loss(input, target),
            peers={"MONAI DiceCELoss": monai} if monai else {},
        )
    )

# MONAI's DiceFocalLoss: softmax Dice + its (sigmoid) FocalLoss over every class's elements
register(
    Case(
        name="dice_focal softmax+sigmoid focal " + "x".join(map(str, SHAPES["2d"])),
        make_inputs=labelled("2d"),
        grad=("input",),
        fastloss=lambda input, target: dice_focal_loss(input, target, focal="sigmoid"),
        reference=lambda input, target: reference.dice_focal_loss(input, target, focal="sigmoid"),
        peers={"MONAI DiceFocalLoss": monai_focal} if monai_focal else {},
    )
)
