"""Benchmark cases of the compound segmentation losses: Dice + cross entropy with a softmax over 14
classes of 2 × 128³ volumes (3-D, nnU-Net-like) and over 21 classes of 8 × 256² maps (2-D), labels
as targets. MONAI's DiceCELoss is the peer here; nnU-Net's DC_and_CE_loss joins through
scripts/bench_peers.py (loaded from its wheel, as the tests do)."""
import torch

from .. import dice_ce_loss, reference
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


def _monai():
    try:
        from monai.losses import DiceCELoss
    except (ImportError, RuntimeError):  # absent, or built for another torch
        return None
    loss = DiceCELoss(softmax=True, to_onehot_y=True)
    return lambda input, target: loss(input, target.unsqueeze(1))


monai = _monai()

for kind, shape in SHAPES.items():
    register(Case(
        name="dice_ce softmax " + "x".join(map(str, shape)), make_inputs=labelled(kind), grad=("input",),
        fastloss=lambda input, target: dice_ce_loss(input, target),
        reference=lambda input, target: reference.dice_ce_loss(input, target),
        peers={"MONAI DiceCELoss": monai} if monai else {}))
