"""Benchmark cases of the quality-aware losses: Varifocal and Quality Focal on (labels, scores) targets
at COCO (100k anchors × 80 classes) and LVIS (20k × 1,203) sizes, and Distribution Focal over the four
box sides of 100k anchors at ultralytics' 16 and mmdet's 17 bins. The peers' dense-target code
(mmdet's varifocal_loss / quality_focal_loss, ultralytics' DFLoss) joins through scripts/bench_peers.py;
the compiled pure-torch reference builds the same dense target."""

import torch

from .. import distribution_focal_loss, quality_focal_loss, reference, varifocal_loss
from . import Case, register

SIZES = ((100_000, 80), (20_000, 1203))


def sparse_targets(rows, classes):
    """Logits, a label per anchor (~2% foreground, background label = classes) and an
    IoU score per label."""

    def make(device, dtype, small):
        n, c = (517, 13) if small else (rows, classes)
        g = torch.Generator().manual_seed(0)
        x = (torch.randn(n, c, generator=g) * 3).to(device=device, dtype=dtype)
        labels = torch.randint(0, c, (n,), generator=g)
        labels[torch.rand(n, generator=g) > 0.02] = c
        scores = torch.rand(n, generator=g) * (labels < c)
        return {
            "pred": x.requires_grad_(),
            "labels": labels.to(device),
            "scores": scores.to(device=device, dtype=dtype),
        }

    return make


def _sparse(fn, **kwargs):
    return lambda pred, labels, scores: fn(pred, (labels, scores), reduction="mean", **kwargs)


for rows, classes in SIZES:
    register(
        Case(
            name=f"varifocal {rows}x{classes}",
            make_inputs=sparse_targets(rows, classes),
            grad=("pred",),
            fastloss=_sparse(varifocal_loss),
            reference=_sparse(reference.varifocal_loss),
        )
    )
    register(
        Case(
            name=f"quality_focal {rows}x{classes}",
            make_inputs=sparse_targets(rows, classes),
            grad=("pred",),
            fastloss=_sparse(quality_focal_loss),
            reference=_sparse(reference.quality_focal_loss),
        )
    )


ANCHORS, SIDES = 100_000, 4


def box_sides(bins, flat_target):
    """Bin logits of every side of 100k positive anchors: pred (anchors · 4, bins), the target per
    side in [0, bins − 1] — (anchors, 4) as ultralytics passes it, or flat (anchors · 4,) as mmdet."""

    def make(device, dtype, small):
        n = 300 if small else ANCHORS
        g = torch.Generator().manual_seed(0)
        pred = (torch.randn(n * SIDES, bins, generator=g) * 2).to(device=device, dtype=dtype)
        target = (torch.rand(n * SIDES if flat_target else (n, SIDES), generator=g) * (bins - 1.01)).to(device)
        return {"pred": pred.requires_grad_(), "target": target}

    return make


def _ultralytics_layout(fn, bins):
    """(anchors · 4, bins) logits against (anchors, 4) sides, summed (ultralytics sums after its weights)."""
    return lambda pred, target: fn(pred.view(*target.shape, bins), target, target_max=bins - 1 - 0.01, reduction="sum")


def _mmdet_layout(fn):
    return lambda pred, target: fn(pred, target, reduction="mean")


register(
    Case(
        name=f"distribution_focal {ANCHORS}x{SIDES}x16",
        make_inputs=box_sides(16, False),
        grad=("pred",),
        fastloss=_ultralytics_layout(distribution_focal_loss, 16),
        reference=_ultralytics_layout(reference.distribution_focal_loss, 16),
    )
)
register(
    Case(
        name=f"distribution_focal {ANCHORS}x{SIDES}x17",
        make_inputs=box_sides(17, True),
        grad=("pred",),
        fastloss=_mmdet_layout(distribution_focal_loss),
        reference=_mmdet_layout(reference.distribution_focal_loss),
    )
)
