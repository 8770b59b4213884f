"""fastloss.rotated_task_aligned_assign against ultralytics' RotatedTaskAlignedAssigner (8.4.190, the
oracle: AGPL, imported only here) on every anchor it does not leave to a tie, and against the
pure-torch reference with the same tie rules everywhere: random and right-angle (exactly tied) boxes,
no GT, padded GTs, many GTs, tiny GTs (raised to the stride), top-k2, dtypes, sparse targets, NaN
boxes, bad input, opcheck and torch.compile; memory: nothing of (B, M, A)."""

import math

import pytest
import torch

import fastloss
from fastloss.reference import rotated_task_aligned as reference
from fastloss.rotated_task_aligned import rotated_inputs
from helpers import DEVICES
from test_task_aligned import NAMES, assert_like_ultralytics, needs_ultralytics, tal


def make(batch=2, gts=12, valid=10, classes=7, size=160, seed=0, quantized=False, dtype=torch.float32):
    return rotated_inputs(batch, gts, valid, classes, size, seed, quantized, dtype)


def ours(args, device=None, **kw):
    kw = {"num_classes": args[0].shape[-1], **kw}
    return fastloss.rotated_task_aligned_assign(*(t.to(device) if device else t for t in args), **kw)


def like_ultralytics(args, topk=10, topk2=None, min_decided=0.5):
    return assert_like_ultralytics(
        args, topk, topk2, min_decided, assign=ours, assigner_class=tal.RotatedTaskAlignedAssigner
    )


@needs_ultralytics
@pytest.mark.parametrize(
    "scenario",
    [
        dict(),
        dict(seed=1, batch=3, gts=20, valid=20),
        dict(seed=2, quantized=True),
        dict(seed=3, gts=40, valid=3),
        dict(seed=4, classes=15, gts=50, valid=31, size=320),
        dict(seed=5, dtype=torch.float64),
    ],
    ids=str,
)
def test_equals_ultralytics(scenario):
    got = like_ultralytics(make(**scenario))
    assert got[3].any()


@needs_ultralytics
@pytest.mark.parametrize("topk, topk2", [(13, None), (10, 4), (1, None)])
def test_topk_and_topk2_equal_ultralytics(topk, topk2):
    like_ultralytics(make(gts=25, valid=20, seed=7), topk, topk2)


@needs_ultralytics
def test_tiny_gts_are_raised_to_the_stride_as_ultralytics():
    scores, pd, anc, labels, gt, mask = make(seed=8)
    gt[..., 2:4] = gt[..., 2:4] * 0.05  # most sides below stride[1] = 16
    got = like_ultralytics((scores, pd, anc, labels, gt, mask))
    assert got[3].any()


@needs_ultralytics
def test_no_gt_and_padded_gts_are_ultralytics_own_results():
    args = make(gts=0, valid=0)
    want = tal.RotatedTaskAlignedAssigner(topk=10, num_classes=7, alpha=0.5, beta=6.0, stride=[8, 16, 32])(*args)
    for name, x, y in zip(NAMES, ours(args), want):
        assert x.dtype == y.dtype and torch.equal(x, y), name
    got = like_ultralytics(make(gts=6, valid=0), min_decided=1.0)
    assert not got[3].any()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scenario", [dict(), dict(quantized=True, seed=1), dict(dtype=torch.float64, seed=2)], ids=str)
@pytest.mark.parametrize("topk, topk2", [(10, None), (4, 2), (64, None)])
@pytest.mark.parametrize("sparse", [False, True])
def test_equals_the_reference_ties_included(scenario, topk, topk2, sparse, device):
    args = make(**scenario)
    got = ours(args, device, topk=topk, topk2=topk2, sparse=sparse)
    with fastloss._backend.reference_only():
        want = ours(args, topk=topk, topk2=topk2, sparse=sparse)
    for name, x, y in zip(NAMES, got, want):
        x = x.cpu()
        assert x.dtype == y.dtype and x.shape == y.shape, name
        if name == "target_scores":
            torch.testing.assert_close(x, y, rtol=2e-5 if args[0].dtype != torch.float64 else 1e-12, atol=1e-7)
        else:
            assert torch.equal(x, y), name


def test_gt_rows_are_ultralytics_candidates():
    """The GT rows' rectangle test is ultralytics' select_candidates_in_gts, bit for bit."""
    if tal is None:
        pytest.skip("ultralytics cannot be imported here")
    scores, pd, anc, labels, gt, mask = make(seed=9)
    gt[0, :4, 2:4] = 3.0  # below the stride
    assigner = tal.RotatedTaskAlignedAssigner(topk=10, num_classes=7, stride=[8, 16, 32])
    want = assigner.select_candidates_in_gts(anc, gt, mask)
    rows = reference.gt_rows(gt, mask[..., 0].bool(), 16.0)
    got, _ = reference._rotated(anc, rows, pd[..., :5], torch.ones_like(mask[..., 0], dtype=torch.bool), 16.0)
    assert torch.equal(got, want.bool())


def test_sparse_targets_are_the_dense_ones_at_the_label():
    args = make(seed=10)
    dense, sparse = ours(args), ours(args, sparse=True)
    assert torch.equal(dense[2].gather(-1, dense[0][..., None])[..., 0], sparse[2])


def test_nan_boxes_give_defined_results():
    scores, pd, anc, labels, gt, mask = make(seed=11)
    gt[0, 0] = math.nan
    pd[1, :50] = math.nan
    got = ours((scores, pd, anc, labels, gt, mask))
    assert not (got[3][0] & (got[4][0] == 0)).any()  # the NaN GT has no positive
    assert got[2].isfinite().all()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.__setitem__(1, a[1][..., :4]), "pd_bboxes must have shape \\(B, A, 5\\)"),
        (lambda a: a.__setitem__(4, a[4][..., :4]), "gt_bboxes must have shape \\(B, M, 5\\)"),
        (lambda a: a.__setitem__(2, a[2][:-1]), "must agree on B and A"),
    ],
)
def test_bad_input_is_a_clear_error(change, message):
    args = list(make())
    change(args)
    with pytest.raises(ValueError, match=message):
        ours(args)


def test_opcheck():
    scores, pd, anc, labels, gt, mask = make(seed=12)
    m = mask[..., 0].bool()
    rows = reference.gt_rows(gt, m, 16.0)
    gauss = fastloss.reference.probiou.gaussians(pd)
    args = (scores, gauss, anc, labels[..., 0].long(), rows, gt, m, 10, 10, 7, 0.5, 6.0, 1e-9, False)
    torch.library.opcheck(torch.ops.fastloss.rotated_task_aligned_assign.default, args)


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph(dynamic):
    """No graph break; the same assignment."""
    torch._dynamo.reset()
    compiled = torch.compile(
        lambda *a: fastloss.rotated_task_aligned_assign(*a, num_classes=7), fullgraph=True, dynamic=dynamic
    )
    for seed in (13, 14):
        args = make(seed=seed, gts=8 + seed % 2)
        for name, x, y in zip(NAMES, compiled(*args), ours(args)):
            if name == "target_scores":  # (inductor fuses the boxes' Gaussians: their last bits)
                torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-7)
            else:
                assert torch.equal(x, y), name


def test_memory_is_the_outputs_and_per_box_values():
    """No (B, M, A) tensor: the peak is the outputs plus the predictions' Gaussians and O(B·A +
    B·M·topk) bookkeeping."""
    from fastloss import bench

    args = make(batch=2, gts=300, valid=300, classes=15, size=640, seed=15)
    names = ["pd_scores", "pd_bboxes", "anc_points", "gt_labels", "gt_bboxes", "mask_gt"]
    outs = ours(args)
    out_bytes = sum(t.numel() * t.element_size() for t in outs)
    peak = bench.peak_bytes(
        lambda **kw: ours(tuple(kw[n] for n in names))[2],
        dict(zip(names, args)),
        [],
        torch.device("cpu"),
        backward=False,
    )
    batch, gts, anchors = 2, 300, args[2].shape[0]
    per_box = batch * anchors * 5 * 4 * 2 + batch * gts * 11 * 4 * 3  # Gaussians (and their making), GT rows
    bookkeeping = batch * gts * 10 * 8 + batch * anchors * 24 + batch * gts * 64
    assert peak <= out_bytes + per_box + bookkeeping, (peak, out_bytes)
    assert peak < batch * gts * anchors * 4  # less than one (B, M, A) float tensor


@needs_ultralytics
def test_the_ultralytics_face():
    """fastloss.ultralytics.RotatedTaskAlignedAssigner, as v8OBBLoss builds its assigner: the same results."""
    import fastloss.ultralytics

    args = make(seed=16, gts=15, valid=12)
    face = fastloss.ultralytics.RotatedTaskAlignedAssigner(
        topk=10, num_classes=7, alpha=0.5, beta=6.0, stride=[8, 16, 32]
    )
    for x, y in zip(face(*args), ours(args)):
        assert torch.equal(x, y)
    like_ultralytics(args)
