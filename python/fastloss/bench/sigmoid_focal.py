"""Benchmark cases of sigmoid focal loss: a dense detector's classification head, 100k anchors × 80
classes, with float one-hot targets (torchvision's interface) and with integer labels."""

import torch
import torch.nn.functional as F

from .. import reference, sigmoid_focal_loss
from . import Case, register

ANCHORS, CLASSES = 100_000, 80


def _logits(device, dtype, small):
    rows, cols = (517, 13) if small else (ANCHORS, CLASSES)
    g = torch.Generator().manual_seed(0)
    return (torch.randn(rows, cols, generator=g) * 3).to(device=device, dtype=dtype), g


def _labels(rows, cols, g, device):
    # ~2% positives, the rest background (label == cols); in small runs some ignored (-100)
    labels = torch.randint(0, cols, (rows,), generator=g)
    labels[torch.rand(rows, generator=g) > 0.02 * cols] = cols
    return labels.to(device)


def float_targets(device, dtype, small):
    x, g = _logits(device, dtype, small)
    labels = _labels(*x.shape, g, "cpu")
    t = F.one_hot(labels, x.shape[1] + 1)[:, :-1].to(device=device, dtype=dtype)
    return {"inputs": x.requires_grad_(), "targets": t}


def label_targets(device, dtype, small):
    x, g = _logits(device, dtype, small)
    labels = _labels(*x.shape, g, device)
    if small:
        labels[::7] = -100
    return {"inputs": x.requires_grad_(), "targets": labels}


def _torchvision():
    try:
        from torchvision.ops import sigmoid_focal_loss as tv
    except (ImportError, RuntimeError):  # absent, or built for another torch
        return None
    return tv


def _with_one_hot(fn):
    """A float-target implementation fed from labels, building the one-hot as mmdet does."""

    def run(inputs, targets):
        classes = inputs.shape[-1]
        return fn(
            inputs, F.one_hot(targets.clamp(0, classes), classes + 1)[..., :classes].to(inputs.dtype), reduction="mean"
        )

    return run


def _mean(fn):
    return lambda inputs, targets: fn(inputs, targets, reduction="mean")


def mixed(logits_dtype, targets_dtype):
    """Float targets in a wider dtype than the logits (AMP: float16 logits, float32 targets): the
    bench's --dtype does not apply."""

    def make(device, dtype, small):
        inputs = float_targets(device, torch.float64, small)
        return {
            "inputs": inputs["inputs"].detach().to(logits_dtype).requires_grad_(),
            "targets": inputs["targets"].to(targets_dtype),
        }

    return make


tv = _torchvision()
register(
    Case(
        name=f"sigmoid_focal float {ANCHORS}x{CLASSES}",
        make_inputs=float_targets,
        grad=("inputs",),
        fastloss=_mean(sigmoid_focal_loss),
        reference=_mean(reference.sigmoid_focal_loss),
        peers={"torchvision": _mean(tv)} if tv else {},
    )
)
register(
    Case(
        name=f"sigmoid_focal labels {ANCHORS}x{CLASSES}",
        make_inputs=label_targets,
        grad=("inputs",),
        fastloss=_mean(sigmoid_focal_loss),
        reference=_mean(reference.sigmoid_focal_loss),
        peers={"torchvision (+one_hot)": _with_one_hot(tv)} if tv else {},
    )
)
for logits_dtype, targets_dtype, short in (
    (torch.float16, torch.float32, "fp16+fp32"),
    (torch.float32, torch.float64, "fp32+fp64"),
):
    register(
        Case(
            name=f"sigmoid_focal {short} {ANCHORS}x{CLASSES}",
            make_inputs=mixed(logits_dtype, targets_dtype),
            grad=("inputs",),
            fastloss=_mean(sigmoid_focal_loss),
            reference=_mean(reference.sigmoid_focal_loss),
            peers={"torchvision": _mean(tv)} if tv else {},
            dtypes=(logits_dtype,),
        )
    )


def sparse_targets(device, dtype, small):
    """ultralytics' classification loss at YOLOv8's training size: batch 16 × 8,400 anchors × 80
    classes, a label and an alignment score per anchor (~2% foreground; background label = 80)."""
    batch, anchors = (2, 300) if small else (16, 8400)
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(batch, anchors, CLASSES, generator=g) * 3).to(device=device, dtype=dtype)
    labels = torch.randint(0, CLASSES, (batch, anchors), generator=g)
    labels[torch.rand(batch, anchors, generator=g) > 0.02] = CLASSES
    scores = torch.rand(batch, anchors, generator=g) * (labels < CLASSES)
    return {"inputs": x.requires_grad_(), "labels": labels.to(device), "scores": scores.to(device=device, dtype=dtype)}


def _sparse_bce(fn):
    return lambda inputs, labels, scores: fn(inputs, (labels, scores), alpha=-1, gamma=0.0, reduction="sum")


def dense_bce(inputs, labels, scores):
    """ultralytics' way: the dense one_hot(label) · score target of the logits' shape, then BCE."""
    target = F.one_hot(labels, CLASSES + 1)[..., :CLASSES].to(inputs.dtype) * scores[..., None]
    return F.binary_cross_entropy_with_logits(inputs, target, reduction="sum")


register(
    Case(
        name="sigmoid_focal sparse BCE 16x8400x80",
        make_inputs=sparse_targets,
        grad=("inputs",),
        fastloss=_sparse_bce(sigmoid_focal_loss),
        reference=_sparse_bce(reference.sigmoid_focal_loss),
        peers={"dense-target BCE (ultralytics)": dense_bce, "dense-target BCE torch.compile": torch.compile(dense_bce)},
    )
)
