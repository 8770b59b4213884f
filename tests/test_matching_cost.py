"""fastloss.matching_cost against the DETR family's matcher cost blocks (Deformable DETR / DINO's focal
form and DETR's softmax, written here from their formulas over the concatenated targets, as their
HungarianMatcher computes them, then split per image) and the pure-torch reference: padded targets,
stacked layers, half logits, edge cases, bad input, opcheck, torch.compile, and the Hungarian example."""

import pytest
import torch

import fastloss
from fastloss._inputs import detr_inputs
from fastloss.reference.matching_cost import matching_cost as reference
from helpers import DEVICES, HAS_CUDA, needs, peer

torchvision_ops = peer("torchvision.ops")
needs_torchvision = needs("torchvision.ops")
needs_scipy = needs("scipy.optimize")


def matcher_blocks(
    logits, boxes, labels, tgt_boxes, mask, kind="focal", alpha=0.25, gamma=2.0, w_class=2.0, w_bbox=5.0, w_giou=2.0
):
    """The matchers' way: every query against the targets of all images ((B·Q) × ΣT), then each image's
    block. Returns a list of (Q, T_i) blocks."""
    batch, queries = logits.shape[:2]
    counts = mask.sum(1).tolist()
    tgt_ids, tgt_bbox = labels[mask], tgt_boxes[mask]
    out_bbox = boxes.flatten(0, 1).float()
    if kind == "focal":
        p = logits.flatten(0, 1).float().sigmoid()
        neg = (1 - alpha) * (p**gamma) * (-(1 - p + 1e-8).log())
        pos = alpha * ((1 - p) ** gamma) * (-(p + 1e-8).log())
        cost_class = pos[:, tgt_ids] - neg[:, tgt_ids]
    else:
        cost_class = -logits.flatten(0, 1).float().softmax(-1)[:, tgt_ids]
    cost_bbox = torch.cdist(out_bbox, tgt_bbox.float(), p=1)

    def xyxy(b):
        cx, cy, w, h = b.unbind(-1)
        return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], -1)

    cost_giou = -torchvision_ops.generalized_box_iou(xyxy(out_bbox), xyxy(tgt_bbox.float()))
    cost = (w_bbox * cost_bbox + w_class * cost_class + w_giou * cost_giou).view(batch, queries, -1)
    return [c[i] for i, c in enumerate(cost.split(counts, -1))]


@needs_torchvision
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["focal", "softmax"])
@pytest.mark.parametrize(
    "options", [dict(), dict(alpha=0.5, gamma=1.5, w_class=1.0, w_bbox=3.0, w_giou=4.0), dict(gamma=0.0)], ids=str
)
def test_equals_the_matchers_cost_blocks(kind, options, device):
    args = detr_inputs(batch=4, queries=30, classes=11, targets=9, counts=(3, 9, 0, 6), softmax=kind == "softmax")
    names = dict(w_class="cost_class", w_bbox="cost_bbox", w_giou="cost_giou")
    got = fastloss.matching_cost(
        *(t.to(device) for t in args), class_cost=kind, **{names.get(k, k): v for k, v in options.items()}
    ).cpu()
    logits, boxes, labels, tgt, mask = args
    assert got.shape == (4, 30, 9) and got.dtype == torch.float32
    for i, block in enumerate(matcher_blocks(*args, kind=kind, **options)):
        n = int(mask[i].sum())
        torch.testing.assert_close(got[i, :, :n], block, rtol=2e-6, atol=2e-6)
        assert (got[i, :, n:] == 0).all()  # padded targets: exactly 0


@pytest.mark.parametrize("kind", ["focal", "softmax"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_equals_the_reference_over_stacked_layers(kind, dtype):
    args = detr_inputs(layers=3, softmax=kind == "softmax", dtype=dtype, seed=1)
    got = fastloss.matching_cost(*args, class_cost=kind)
    logits, boxes, labels, tgt, mask = args
    want = reference(logits, boxes, labels, tgt, mask, 1 if kind == "softmax" else 0, 0.25, 2.0, 2.0, 5.0, 2.0)
    assert got.shape == (3, 3, 20, 7) and got.dtype == want.dtype
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)
    for layer in range(3):  # a layer of the stack is that layer alone
        alone = fastloss.matching_cost(logits[layer], boxes[layer], labels, tgt, mask, class_cost=kind)
        assert torch.equal(got[layer], alone)


@pytest.mark.parametrize("kind", ["focal", "softmax"])
def test_half_logits_stay_finite(kind):
    """Saturated float16 logits: the matchers' half arithmetic gives log(0) = −inf ("cost matrix is
    infeasible"); here the math is float32 and every cost is finite."""
    logits, boxes, labels, tgt, mask = detr_inputs(softmax=kind == "softmax", dtype=torch.float16, scale=40.0, seed=2)
    got = fastloss.matching_cost(logits, boxes, labels, tgt, mask, class_cost=kind)
    assert torch.isfinite(got).all()
    want = fastloss.matching_cost(logits.float(), boxes.float(), labels, tgt.float(), mask, class_cost=kind)
    assert torch.equal(got, want)  # (half inputs are read exactly into float32)


@pytest.mark.parametrize("counts, targets", [((0, 0, 0), 5), ((0, 0, 0), 0)])
def test_no_real_targets(counts, targets):
    got = fastloss.matching_cost(*detr_inputs(targets=targets, counts=counts))
    assert got.shape == (3, 20, targets) and (got == 0).all()


@needs_scipy
@pytest.mark.parametrize("kind", ["focal", "softmax"])
def test_hungarian_on_the_padded_matrix_matches_the_unpadded_one(kind):
    """The documented property of the 0 columns: for Q ≥ T the real targets get the same queries."""
    from scipy.optimize import linear_sum_assignment

    args = detr_inputs(batch=3, queries=12, targets=8, counts=(5, 8, 2), softmax=kind == "softmax", seed=3)
    cost = fastloss.matching_cost(*args, class_cost=kind)
    for i in range(3):
        n = int(args[4][i].sum())
        rows, cols = linear_sum_assignment(cost[i].numpy())
        real = cols < n
        rows_u, cols_u = linear_sum_assignment(cost[i, :, :n].numpy())
        assert sorted(zip(cols[real], rows[real])) == sorted(zip(cols_u, rows_u))


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda a: (a[0][..., 0],) + a[1:], ValueError, "pred_logits must have shape"),
        (lambda a: (a[0], a[1][:, :-1]) + a[2:], ValueError, "pred_boxes must match"),
        (lambda a: a[:3] + (a[3][..., :3],) + a[4:], ValueError, "tgt_boxes must have shape"),
        (lambda a: a[:2] + (a[2][:, :-1],) + a[3:], ValueError, "tgt_labels must have shape"),
        (lambda a: a[:2] + (a[2] + 9,) + a[3:], ValueError, "tgt_labels has label 9"),
        (lambda a: a[:2] + (a[2].float(),) + a[3:], TypeError, "tgt_labels must be an integer"),
        (lambda a: a[:4] + (a[4][:2],), ValueError, "tgt_mask must have shape"),
        (lambda a: (a[0].to("meta"),) + a[1:], ValueError, "must be on pred_logits' device"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_bad_input_is_a_clear_error(change, error, message):
    with pytest.raises(error, match=message):
        fastloss.matching_cost(*change(detr_inputs()))


def test_a_no_object_label_is_refused_with_softmax():
    logits, boxes, labels, tgt, mask = detr_inputs(softmax=True)
    labels[0, 0] = logits.shape[-1] - 1  # the "no object" column is never a target
    with pytest.raises(ValueError, match="outside \\[0, 9\\)"):
        fastloss.matching_cost(logits, boxes, labels, tgt, mask, class_cost="softmax")
    with pytest.raises(ValueError, match="class_cost must be one of"):
        fastloss.matching_cost(*detr_inputs(), class_cost="sigmoid")


@pytest.mark.parametrize("kind", [0, 1])
def test_opcheck(kind):
    logits, boxes, labels, tgt, mask = detr_inputs(layers=2, softmax=kind == 1)
    torch.library.opcheck(
        torch.ops.fastloss.matching_cost.default, (logits, boxes, labels, tgt, mask, kind, 0.25, 2.0, 2.0, 5.0, 2.0)
    )


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph(dynamic):
    torch._dynamo.reset()
    step = torch.compile(lambda *a: fastloss.matching_cost(*a), fullgraph=True, dynamic=dynamic)
    for queries, targets in ((10, 4), (17, 6)):
        args = detr_inputs(queries=queries, targets=targets, counts=(targets, 1, 0))
        assert torch.equal(step(*args), fastloss.matching_cost(*args))


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("kind", ["focal", "softmax"])
def test_cuda_equals_cpu_at_scale(kind):
    args = detr_inputs(
        batch=16,
        queries=900,
        classes=91,
        targets=100,
        counts=tuple(range(0, 160, 10)),
        layers=6,
        softmax=kind == "softmax",
    )
    torch.testing.assert_close(
        fastloss.matching_cost(*(t.cuda() for t in args), class_cost=kind).cpu(),
        fastloss.matching_cost(*args, class_cost=kind),
        rtol=2e-5,
        atol=2e-5,
    )
