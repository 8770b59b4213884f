"""Benchmark cases of the overlap losses: softmax over 21 classes on 8 × 128 × 128 label maps
(VOC-like), and sigmoid over 4 channels of 2 × 64³ volumes with multi-label float targets
(medical); MONAI's DiceLoss / TverskyLoss as the peer."""

import torch

from .. import overlap as fused
from ..reference import overlap as reference
from . import Case, register

VOC = (8, 21, 128, 128)
MEDICAL = (2, 4, 64, 64, 64)


def voc(device, dtype, small):
    n, c, h, w = (2, 5, 9, 13) if small else VOC
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, c, (n, h, w), generator=g)
    if small:
        labels[:, 0] = 255  # some ignored
    x = (torch.randn(n, c, h, w, generator=g) * 2).to(device=device, dtype=dtype)
    return {"input": x.requires_grad_(), "target": labels.to(device)}


def medical(device, dtype, small):
    shape = (2, 3, 5, 6, 7) if small else MEDICAL
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(shape, generator=g) * 2).to(device=device, dtype=dtype)
    target = (torch.rand(shape, generator=g) < 0.3).to(device=device, dtype=dtype)
    return {"input": x.requires_grad_(), "target": target}


def _monai():
    try:
        from monai import losses
    except (ImportError, RuntimeError):  # absent, or built for another torch
        return None
    return losses


monai = _monai()


def _monai_labels(fn):
    """MONAI's label convention: (N, 1, *spatial) labels, one-hot inside the loss."""
    return lambda input, target: fn(input, target.unsqueeze(1))


SPECS = [  # (name, inputs, fastloss options, MONAI loss)
    (
        "dice_loss softmax 8x21x128x128",
        voc,
        dict(activation="softmax", ignore_index=255),
        lambda: _monai_labels(monai.DiceLoss(softmax=True, to_onehot_y=True, ignore_index=255)),
    ),
    (
        "tversky_loss softmax 8x21x128x128",
        voc,
        dict(activation="softmax", alpha=0.3, beta=0.7, ignore_index=255),
        lambda: _monai_labels(monai.TverskyLoss(softmax=True, to_onehot_y=True, alpha=0.3, beta=0.7, ignore_index=255)),
    ),
    ("dice_loss sigmoid 2x4x64x64x64", medical, dict(activation="sigmoid"), lambda: monai.DiceLoss(sigmoid=True)),
    (
        "tversky_loss sigmoid 2x4x64x64x64",
        medical,
        dict(activation="sigmoid", alpha=0.3, beta=0.7),
        lambda: monai.TverskyLoss(sigmoid=True, alpha=0.3, beta=0.7),
    ),
]

for name, make, options, monai_loss in SPECS:
    loss = name.split()[0]
    fused_loss, reference_loss = getattr(fused, loss), getattr(reference, loss)
    register(
        Case(
            name=name,
            make_inputs=make,
            grad=("input",),
            fastloss=lambda input, target, f=fused_loss, o=options: f(input, target, **o),
            reference=lambda input, target, f=reference_loss, o=options: f(input, target, **o),
            peers={"MONAI": monai_loss()} if monai else {},
        )
    )
