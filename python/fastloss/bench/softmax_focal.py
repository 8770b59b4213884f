"""Benchmark cases of softmax focal loss: a detector head (100k anchors × 81 classes), VOC-like
segmentation (8 × 21 × 128 × 128) and LVIS-like classification (20k × 1203). Peers: F.cross_entropy
(γ = 0: the speed of light of a fused row kernel; the focal loss does a little more per element).
The cross_entropy cases time fastloss at γ = 0 (fastloss.nn.CrossEntropyLoss) against it."""

import torch
import torch.nn.functional as F

from .. import reference, softmax_focal_loss
from . import Case, register

SHAPES = {"detector": (100_000, 81), "segmentation": (8, 21, 128, 128), "lvis": (20_000, 1203)}
SMALL = {"detector": (517, 13), "segmentation": (2, 5, 9, 13), "lvis": (40, 301)}


def _inputs(kind):
    def make(device, dtype, small):
        shape = (SMALL if small else SHAPES)[kind]
        g = torch.Generator().manual_seed(0)
        x = (torch.randn(shape, generator=g) * 2).to(device=device, dtype=dtype)
        y = torch.randint(0, shape[1], (shape[0],) + shape[2:], generator=g)
        if small:
            y.view(-1)[::5] = -100
        return {"input": x.requires_grad_(), "target": y.to(device)}

    return make


for kind, shape in SHAPES.items():
    register(
        Case(
            name=f"softmax_focal {kind} {'x'.join(map(str, shape))}",
            make_inputs=_inputs(kind),
            grad=("input",),
            fastloss=softmax_focal_loss,
            reference=reference.softmax_focal_loss,
            peers={"F.cross_entropy (γ=0)": F.cross_entropy},
        )
    )
    register(
        Case(
            name=f"cross_entropy {kind} {'x'.join(map(str, shape))}",
            make_inputs=_inputs(kind),
            grad=("input",),
            fastloss=lambda input, target: softmax_focal_loss(input, target, gamma=0.0),
            reference=lambda input, target: reference.softmax_focal_loss(input, target, gamma=0.0),
            peers={"F.cross_entropy": F.cross_entropy},
        )
    )
