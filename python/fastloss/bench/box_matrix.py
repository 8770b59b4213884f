"""Benchmark cases of the pairwise box metrics: a 5,000 × 20,000 matrix (an assigner's GT × anchor
overlaps: mmdet's bbox_overlaps docstring measures 512 × 400k at 8 GB), forward only, as assigners
run it under no_grad; torchvision's functions eager and compiled."""

import torch

from .. import box_matrix as fused
from ..reference import box_matrix as reference
from . import Case, register

N, M = 5000, 20000


def box_sets(device, dtype, small):
    n, m = (50, 200) if small else (N, M)
    g = torch.Generator().manual_seed(0)
    sets = {}
    for name, count in (("boxes1", n), ("boxes2", m)):
        xy = torch.rand(count, 2, generator=g, dtype=torch.float64) * 600
        wh = torch.rand(count, 2, generator=g, dtype=torch.float64) * 100 + 2
        sets[name] = torch.cat([xy, xy + wh], -1).to(device=device, dtype=dtype)
    return sets


def _reference(kind):
    code = reference.KINDS[kind]
    return lambda boxes1, boxes2: reference.box_iou_matrix(boxes1[None], boxes2[None], code, 0, 1e-7, 0, False, 0)[0]


try:
    from torchvision import ops as tv_ops
except (ImportError, RuntimeError):  # absent, or built for another torch
    tv_ops = None

for kind, tv_name in (("iou", "box_iou"), ("giou", "generalized_box_iou"), ("ciou", "complete_box_iou")):
    peers = {}
    if tv_ops is not None:
        tv = getattr(tv_ops, tv_name)
        peers = {"torchvision": tv, "torchvision+torch.compile": torch.compile(tv)}
    register(
        Case(
            name=f"box_iou_matrix {kind} {N}x{M}",
            make_inputs=box_sets,
            grad=(),
            fastloss=lambda boxes1, boxes2, kind=kind: fused.box_iou_matrix(boxes1, boxes2, kind),
            reference=_reference(kind),
            peers=peers,
            forward_only=True,
        )
    )
