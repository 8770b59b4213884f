"""Task-aligned assignment (TOOD; the assigner of YOLOv8–11) on one fused op,
fastloss::task_aligned_assign (formulas and tie rules in csrc/math/task_aligned.h): what ultralytics'
TaskAlignedAssigner returns, without materialising any (batch, GTs, anchors) tensor.
"""

import torch

from . import _backend
import functools
import itertools
import typing

from ._inputs import assigner_inputs
from ._spec import FLOATS, OpSpec, Plan, declare, operand_dtypes
from .reference import task_aligned as _reference
from ._common import check_int, check_nonnegative, check_number, check_tensor, check_values

_OP = "fastloss::task_aligned_assign"


def _floating(name, t, dims, last=None):
    check_tensor(name, t)
    if not t.dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating point tensor, got {t.dtype}")
    if t.dim() != dims or (last is not None and t.shape[-1] != last):
        shape = (
            {3: f"(B, A, {last if last else 'C'})", 2: "(A, 2)"}[dims]
            if name.startswith(("pd", "anc"))
            else f"(B, M, {last})"
        )
        raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")


def _per_gt(name, t, batch, gts):
    """gt_labels / mask_gt: (B, M, 1) as ultralytics passes them, or (B, M)."""
    check_tensor(name, t)
    if t.dim() == 3 and t.shape[-1] == 1:
        t = t.squeeze(-1)
    if tuple(t.shape) != (batch, gts):
        raise ValueError(
            f"{name} must have shape (B, M, 1) or (B, M) with gt_bboxes' B = {batch} and M = {gts}, got "
            f"{tuple(t.shape)}"
        )
    return t


class Checked(typing.NamedTuple):
    """checked_inputs' result: the assigners' arguments as the op takes them."""

    labels: torch.Tensor  # (B, M) int64
    mask: torch.Tensor  # (B, M) bool
    topk: int
    topk2: int
    num_classes: int
    alpha: float
    beta: float
    eps: float
    stride_val: float
    sparse: bool


def checked_inputs(tensors, topk, num_classes, alpha, beta, eps, stride, topk2, sparse, box_fields):
    """The assigners' arguments checked (tensors: pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes,
    mask_gt; boxes of box_fields values) and normalised, as a Checked; or, without GTs, ultralytics'
    own result."""
    pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt = tensors
    _floating("pd_scores", pd_scores, 3)
    _floating("pd_bboxes", pd_bboxes, 3, box_fields)
    _floating("anc_points", anc_points, 2, 2)
    _floating("gt_bboxes", gt_bboxes, 3, box_fields)
    batch, anchors = pd_scores.shape[:2]
    if tuple(pd_bboxes.shape[:2]) != (batch, anchors) or anc_points.shape[0] != anchors:
        raise ValueError(
            f"pd_scores (B, A, C), pd_bboxes (B, A, {box_fields}) and anc_points (A, 2) must agree on B and A, got "
            f"{tuple(pd_scores.shape)}, {tuple(pd_bboxes.shape)} and {tuple(anc_points.shape)}"
        )
    if gt_bboxes.shape[0] != batch:
        raise ValueError(f"gt_bboxes must have pd_scores' batch size {batch}, got {tuple(gt_bboxes.shape)}")
    gts = gt_bboxes.shape[1]
    labels, mask = _per_gt("gt_labels", gt_labels, batch, gts), _per_gt("mask_gt", mask_gt, batch, gts)
    for name, t in (
        ("pd_bboxes", pd_bboxes),
        ("anc_points", anc_points),
        ("gt_labels", labels),
        ("gt_bboxes", gt_bboxes),
        ("mask_gt", mask),
    ):
        if t.device != pd_scores.device:
            raise ValueError(f"{name} must be on pd_scores' device {pd_scores.device}, got {t.device}")
    topk = check_int("topk", topk)
    topk2 = topk if topk2 is None else check_int("topk2", topk2)
    num_classes = check_int("num_classes", num_classes)
    if not 1 <= topk <= 64:
        raise ValueError(f"topk must be in [1, 64], got {topk}")
    if not 1 <= topk2 <= topk:
        raise ValueError(f"topk2 must be in [1, topk], got {topk2}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    alpha, beta = check_number("alpha", alpha), check_number("beta", beta)
    eps = check_nonnegative("eps", eps)
    stride = list(stride) if isinstance(stride, (list, tuple)) else [stride]
    stride_val = check_nonnegative("stride", stride[1] if len(stride) > 1 else stride[0])
    sparse = bool(sparse)
    if gts == 0:  # ultralytics' own result without GTs (its dtypes included)
        scores = pd_scores.new_zeros(pd_scores.shape[:2]) if sparse else torch.zeros_like(pd_scores)
        return (
            torch.full_like(pd_scores[..., 0], num_classes),
            torch.zeros_like(pd_bboxes),
            scores,
            torch.zeros_like(pd_scores[..., 0], dtype=torch.bool),
            torch.zeros_like(pd_scores[..., 0]),
        )
    labels, mask = labels.long(), mask.bool()
    limit = min(num_classes, pd_scores.shape[-1])
    bad = mask & ((labels < 0) | (labels >= limit))
    check_values(
        bad,
        lambda read: (
            f"gt_labels has {'label ' + str(labels[bad][0].item()) if read else 'a label'} "
            f"outside [0, {limit}) for a GT that mask_gt marks valid"
        ),
    )
    return Checked(labels, mask, topk, topk2, num_classes, alpha, beta, eps, stride_val, sparse)


def task_aligned_assign(
    pd_scores,
    pd_bboxes,
    anc_points,
    gt_labels,
    gt_bboxes,
    mask_gt,
    *,
    topk=10,
    num_classes,
    alpha=0.5,
    beta=6.0,
    eps=1e-9,
    stride=(8, 16, 32),
    topk2=None,
    sparse=False,
):
    """Task-aligned assignment of anchors to ground-truth boxes, as ultralytics' TaskAlignedAssigner.

    pd_scores (B, A, C): class probabilities (the detached sigmoid of the logits); pd_bboxes (B, A, 4)
    and gt_bboxes (B, M, 4): xyxy; anc_points (A, 2); gt_labels and mask_gt: (B, M, 1) or (B, M).
    `stride` is the model's strides, as ultralytics' assigner takes them: GT sides shorter than
    stride[1] (stride[0] for one level) are raised to it for the in-box test. `topk2` (default topk)
    keeps only each GT's top-k2 positives after conflicts are resolved.

    Returns (target_labels (B, A) int64, target_bboxes (B, A, 4), target_scores (B, A, num_classes),
    fg_mask (B, A) bool, target_gt_idx (B, A) int64) — with `sparse=True`, target_scores is (B, A):
    each anchor's score for its target_labels class (0 for background). Ties in the top-k go to the
    lowest anchor index and conflicts to the lowest GT index. No gradient (assignment is piecewise
    constant): the inputs are read detached.
    """
    tensors = (pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt)
    checked = checked_inputs(tensors, topk, num_classes, alpha, beta, eps, stride, topk2, sparse, box_fields=4)
    if not isinstance(checked, Checked):
        return checked
    labels, mask, topk, topk2, num_classes, alpha, beta, eps, stride_val, sparse = checked
    if not _backend.use_kernels(pd_scores.device):
        from .reference.task_aligned import task_aligned_assign as reference

        return reference(
            pd_scores,
            pd_bboxes,
            anc_points,
            labels,
            gt_bboxes,
            mask,
            topk,
            topk2,
            num_classes,
            alpha,
            beta,
            eps,
            stride_val,
            sparse,
        )
    return torch.ops.fastloss.task_aligned_assign(
        pd_scores.detach(),
        pd_bboxes.detach(),
        anc_points.detach(),
        labels,
        gt_bboxes.detach(),
        mask,
        topk,
        topk2,
        num_classes,
        alpha,
        beta,
        eps,
        stride_val,
        sparse,
    )


__all__ = ["task_aligned_assign"]


def _register():
    @torch.library.register_fake(_OP)
    def _(
        pd_scores,
        pd_bboxes,
        anc_points,
        gt_labels,
        gt_bboxes,
        mask_gt,
        topk,
        topk2,
        num_classes,
        alpha,
        beta,
        eps,
        stride_val,
        sparse,
    ):
        b, a = pd_scores.shape[:2]
        out = torch.promote_types(torch.promote_types(pd_scores.dtype, pd_bboxes.dtype), gt_bboxes.dtype)
        return (
            pd_scores.new_empty((b, a), dtype=torch.long),
            gt_bboxes.new_empty((b, a, 4)),
            pd_scores.new_empty((b, a) if sparse else (b, a, num_classes), dtype=out),
            pd_scores.new_empty((b, a), dtype=torch.bool),
            pd_scores.new_empty((b, a), dtype=torch.long),
        )


# ------------------------------------------------------------------------------------ the record


def zero_row(args, size):
    """GT 0 over the first row of anchors, class 0, every anchor's class-0 score 0 but one's (whose
    box is GT 0's): its top-k is one positive, then zero-metric candidates in index order."""
    scores, pd, _, labels, gt, mask = args
    gt[:, 0] = torch.tensor([0.0, 0.0, float(size), 6.0])
    labels[:, 0], mask[:, 0] = 0, 1
    scores[..., 0] = 0
    one = min(3, scores.shape[1] - 1)
    scores[:, one, 0] = 0.9
    pd[:, one] = gt[:, 0]


def parity_call(make_inputs, assign, scenarios=True):
    """A plan's call for an assigner: make_inputs(batch=, gts=, valid=, classes=, size=, seed=,
    quantized=, dtype=) gives its six tensors; assign is the public function."""

    def call(case, g, on, seed):
        dtype, dtype2 = operand_dtypes(case)
        args = list(
            make_inputs(
                batch=case["batch"],
                gts=case["gts"],
                valid=max(case["gts"] - 2, 0),
                classes=case["classes"],
                size=case["size"],
                seed=seed,
                quantized=case["quantized"],
                dtype=dtype,
            )
        )
        if scenarios and case.get("scenario") == "zero_row" and case["gts"] > 0:
            zero_row(args, case["size"])
        args[1], args[4] = args[1].to(dtype2), args[4].to(case.get("dtype3") or args[4].dtype)
        fn = functools.partial(
            assign,
            num_classes=case["classes"],
            topk=case["topk"],
            topk2=None if case["topk2"] is None else min(case["topk2"], case["topk"]),
            sparse=case["sparse"],
        )
        return fn, [on(t) for t in args], {}

    return call


def anchor_count(size):
    return sum((size // stride) ** 2 for stride in (8, 16, 32))


def _dtype_sweep(small):
    return [
        small(dtype=a, dtype2=b, dtype3=c, sparse=i % 2 == 1, topk=10, topk2=5 if i % 3 else None)
        for i, (a, b, c) in enumerate(itertools.product(FLOATS, FLOATS, FLOATS))
    ]


# (size 16: fewer anchors than top-k; 100 GTs × 3 images: more GTs than the emulated grid has warps;
# "zero_row": a GT over the first row of anchors, all of zero score but one — its top-k completed by
# zero-metric anchors in index order)
SPEC = declare(
    OpSpec(
        "task_aligned",
        ops=("task_aligned_assign",),
        register=_register,
        reference=_reference,
        plan=Plan(
            factors=dict(
                dtype=FLOATS,
                batch=[1, 3],
                gts=[0, 1, 12, 40, 100],
                classes=[1, 7, 80],
                size=[16, 64, 160, 320],
                topk=[1, 10, 13],
                topk2=[None, 5],
                sparse=[False, True],
                quantized=[False, True],
                scenario=["random", "zero_row"],
            ),
            call=parity_call(assigner_inputs, task_aligned_assign),
            elements=lambda case: case["batch"] * max(case["gts"], 1) * anchor_count(case["size"]),
            # (fewer anchors first: the GTs' count decides the warps' loop)
            shrink=(("size", 32), "gts"),
            small=dict(gts=12, size=64),
            mid=dict(gts=100, size=640),
            large=dict(batch=8, gts=400, size=640),
            empty=(dict(gts=0), dict(batch=0)),
            sweep=_dtype_sweep,
            differentiable=False,
            decisions=True,
        ),
        bench="task_aligned",
    )
)
