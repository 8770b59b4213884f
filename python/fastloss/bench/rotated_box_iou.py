"""Benchmark cases of the exact rotated IoU: every pair of 1,000 × 10,000 oriented boxes (NMS's and
evaluation's matrix; forward only) and 200,000 aligned pairs forward + backward (a rotated IoU loss).
The competitor is torch.compile of the reference (the same clipping in torch); shapely, the tests'
oracle, runs a pair at a time in Python."""

import torch

from ..reference import rotated_box_iou as reference
from ..reference.oriented import xywhr_rows
from ..rotated_box_iou import rotated_box_iou
from . import Case, register
from .probiou import obb_inputs


def _reference(aligned):
    def iou(obb1, obb2):
        return reference.rotated_box_iou_op(xywhr_rows(obb1), xywhr_rows(obb2), 1e-7, aligned)

    return iou


register(
    Case(
        name="rotated_box_iou 1000x10000",
        make_inputs=obb_inputs(1000, 10000),
        grad=(),
        fastloss=lambda obb1, obb2: rotated_box_iou(obb1, obb2),
        reference=_reference(False),
        forward_only=True,
        dtypes=(torch.float32, torch.float64),
    )
)
register(
    Case(
        name="rotated_box_iou aligned 200000",
        make_inputs=obb_inputs(200000, 200000, grad=True),
        grad=("obb1",),
        fastloss=lambda obb1, obb2: rotated_box_iou(obb1, obb2, aligned=True),
        reference=_reference(True),
        dtypes=(torch.float32, torch.float64),
    )
)
