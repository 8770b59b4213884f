"""Benchmark cases of the DETR matching cost at DINO's training sizes: 6 decoder layers, batch 16, 900
queries, 91 classes, 100 targets per image (padded to 100; 30 real in the second case), forward only
(matchers run under no_grad). The peer is the matchers' own way, written here from their formula:
per layer, every query against the targets of all images ((B·Q) × ΣT), eager and compiled.
RT-DETR's cost from its class cost at its training sizes (6 decoder layers and the encoder's output,
batch 16, 300 queries, 20 targets per image), against ultralytics' matcher's way, likewise."""

import torch

from ..matching import matching_cost as fused_matching_cost
from ..reference import matching_cost as reference
from ..reference import rtdetr_matching_cost as rtdetr_reference
from ..rtdetr_matching_cost import rtdetr_matching_cost
from . import Case, register

LAYERS, BATCH, QUERIES, CLASSES, TARGETS = 6, 16, 900, 91, 100


def detr_inputs(real):
    def make(device, dtype, small):
        layers, batch, queries, targets = (2, 2, 30, 6) if small else (LAYERS, BATCH, QUERIES, TARGETS)
        g = torch.Generator().manual_seed(real)
        centre = torch.rand(layers, batch, queries, 2, generator=g) * 0.6 + 0.2
        tensors = dict(
            pred_logits=torch.randn(layers, batch, queries, CLASSES, generator=g) * 3,
            pred_boxes=torch.cat([centre, torch.rand(layers, batch, queries, 2, generator=g) * 0.3 + 0.02], -1),
            tgt_labels=torch.randint(0, CLASSES, (batch, targets), generator=g),
            tgt_boxes=torch.cat(
                [
                    torch.rand(batch, targets, 2, generator=g) * 0.6 + 0.2,
                    torch.rand(batch, targets, 2, generator=g) * 0.3 + 0.02,
                ],
                -1,
            ),
            tgt_mask=torch.arange(targets)[None].expand(batch, -1) < min(real, targets),
        )
        return {
            k: v.to(device=device, dtype=dtype if v.dtype.is_floating_point else v.dtype) for k, v in tensors.items()
        }

    return make


def _fastloss(pred_logits, pred_boxes, tgt_labels, tgt_boxes, tgt_mask):
    return fused_matching_cost(pred_logits, pred_boxes, tgt_labels, tgt_boxes, tgt_mask)


def _reference(pred_logits, pred_boxes, tgt_labels, tgt_boxes, tgt_mask):
    return reference.matching_cost(
        pred_logits, pred_boxes, tgt_labels, tgt_boxes, tgt_mask, 0, 0.25, 2.0, 2.0, 5.0, 2.0
    )


def _xyxy(b):
    cx, cy, w, h = b.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], -1)


def _giou(a, b):
    area_a, area_b = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    inter = (torch.min(a[:, None, 2:], b[:, 2:]) - torch.max(a[:, None, :2], b[:, :2])).clamp(min=0).prod(-1)
    union = area_a[:, None] + area_b - inter
    enclose = (torch.max(a[:, None, 2:], b[:, 2:]) - torch.min(a[:, None, :2], b[:, :2])).clamp(min=0).prod(-1)
    return inter / union - (enclose - union) / enclose


def detr_style(pred_logits, pred_boxes, tgt_labels, tgt_boxes, tgt_mask, alpha=0.25, gamma=2.0):
    """The matchers' cost blocks, per layer over the concatenated targets of all images (their shape
    of the computation), then split per image: a list (per layer) of (B, Q, ΣT) costs."""
    ids, boxes = tgt_labels[tgt_mask], tgt_boxes[tgt_mask]
    costs = []
    for logits, pred in zip(pred_logits, pred_boxes):
        batch, queries = logits.shape[:2]
        p = logits.flatten(0, 1).sigmoid()
        neg = (1 - alpha) * (p**gamma) * (-(1 - p + 1e-8).log())
        pos = alpha * ((1 - p) ** gamma) * (-(p + 1e-8).log())
        out = pred.flatten(0, 1)
        cost = (
            5.0 * torch.cdist(out, boxes, p=1)
            + 2.0 * (pos[:, ids] - neg[:, ids])
            - 2.0 * _giou(_xyxy(out), _xyxy(boxes))
        )
        costs.append(cost.view(batch, queries, -1))
    return torch.stack(costs)


for real in (100, 30):
    register(
        Case(
            name=f"matching_cost {LAYERS}x{BATCH}x{QUERIES}x{TARGETS} ({real} real)",
            make_inputs=detr_inputs(real),
            grad=(),
            fastloss=_fastloss,
            reference=_reference,
            forward_only=True,
            peers={"DETR-style torch": detr_style, "DETR-style torch.compile": torch.compile(detr_style)},
            dtypes=(torch.float32, torch.float64, torch.float16),
        )
    )


RTDETR_LAYERS, RTDETR_QUERIES, RTDETR_TARGETS = 7, 300, 20


def rtdetr_inputs(device, dtype, small):
    layers, batch, queries, targets = (2, 2, 30, 6) if small else (RTDETR_LAYERS, BATCH, RTDETR_QUERIES, RTDETR_TARGETS)
    g = torch.Generator().manual_seed(0)
    centre = torch.rand(layers, batch, queries, 2, generator=g) * 0.6 + 0.2
    tensors = dict(
        class_cost=torch.randn(layers, batch, queries, targets, generator=g),
        pred_boxes=torch.cat([centre, torch.rand(layers, batch, queries, 2, generator=g) * 0.3 + 0.02], -1),
        tgt_boxes=torch.cat(
            [torch.rand(batch, targets, 2, generator=g) * 0.6 + 0.2, torch.rand(batch, targets, 2, generator=g) * 0.3],
            -1,
        ),
    )
    return {k: v.to(device=device, dtype=dtype) for k, v in tensors.items()}


def ultralytics_style(class_cost, pred_boxes, tgt_boxes):
    """ultralytics' HungarianMatcher cost, per layer over the concatenated targets ((B·Q) × ΣT; the
    class cost given as its (B, Q, T) blocks, each image's real targets), its bbox_iou's steps."""
    gt = tgt_boxes.flatten(0, 1)
    costs = []
    for cls, pred in zip(class_cost, pred_boxes):
        out = pred.flatten(0, 1)
        b1, b2 = out.unsqueeze(1), gt.unsqueeze(0)
        giou = rtdetr_reference.xywh_iou(b1, b2, giou=True)
        cost_class = cls.flatten(0, 1).repeat(1, cls.shape[0])  # (its gathered (B·Q) × ΣT class cost)
        cost = 1 * cost_class + 5 * (b1 - b2).abs().sum(-1) + 2 * (1.0 - giou)
        cost[cost.isnan() | cost.isinf()] = 0.0
        costs.append(cost.view(*cls.shape[:2], -1))
    return torch.stack(costs)


register(
    Case(
        name=f"rtdetr_matching_cost {RTDETR_LAYERS}x{BATCH}x{RTDETR_QUERIES}x{RTDETR_TARGETS}",
        make_inputs=rtdetr_inputs,
        grad=(),
        fastloss=rtdetr_matching_cost,
        reference=lambda class_cost, pred_boxes, tgt_boxes: rtdetr_reference.rtdetr_matching_cost(
            class_cost, pred_boxes, tgt_boxes, 1.0, 5.0, 2.0
        ),
        forward_only=True,
        peers={
            "ultralytics-style torch": ultralytics_style,
            "ultralytics-style torch.compile": torch.compile(ultralytics_style),
        },
        dtypes=(torch.float32, torch.float64),
    )
)
