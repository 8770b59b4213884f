"""fastloss.task_aligned_assign against ultralytics' TaskAlignedAssigner (8.4.190, the oracle: AGPL,
imported only here) and the pure-torch reference with the same tie rules: random and realistic
inputs, no GT, padded GTs, 1,000 GTs per image, boxes outside the image, tiny GTs, top-k2, dtypes,
sparse targets, NaN boxes, bad input, opcheck and torch.compile."""

import pytest
import torch

import fastloss
from fastloss.reference.task_aligned import task_aligned_assign as reference
from fastloss._inputs import assigner_inputs as make
from helpers import DEVICES, HAS_CUDA, peer

tal = peer("ultralytics.utils.tal")
needs_ultralytics = pytest.mark.skipif(tal is None, reason="ultralytics cannot be imported here")
NAMES = ("target_labels", "target_bboxes", "target_scores", "fg_mask", "target_gt_idx")


def ours(args, device=None, **kw):
    kw = {"num_classes": args[0].shape[-1], **kw}
    return fastloss.task_aligned_assign(*(t.to(device) if device else t for t in args), **kw)


def theirs(args, topk=10, topk2=None, assigner_class=None):
    assigner = (assigner_class or tal.TaskAlignedAssigner)(
        topk=topk, num_classes=args[0].shape[-1], alpha=0.5, beta=6.0, stride=[8, 16, 32], topk2=topk2
    )
    return assigner, assigner(*args)


def undecided_anchors(assigner, args, topk, got, want):
    """Anchors whose assignment ultralytics leaves to a tie (the issue's rule): inside a GT whose k-th and
    (k+1)-th metrics differ by at most 1e-6 relative, or a positive of such a GT (on either side), or
    claimed by several GTs whose highest overlaps tie."""
    scores, pd, anc, labels, gt, mask = args
    assigner.bs, assigner.n_max_boxes = gt.shape[:2]
    mask_pos, metric, overlaps = assigner.get_pos_mask(scores, pd, labels, gt, anc, mask)
    candidates = assigner.select_candidates_in_gts(anc, gt, mask).bool() & mask.bool()
    ranked = metric.sort(-1, descending=True).values
    kth, after = ranked[..., topk - 1], ranked[..., topk]
    tied_gt = (kth - after).abs() <= 1e-6 * kth.abs()
    # the tie decides between a GT's candidates of the tied metric; a positive tie can also move its maxima
    at_tie = (metric - kth[..., None]).abs() <= 1e-6 * kth[..., None].abs()
    undecided = (candidates & tied_gt[..., None] & at_tie).any(1)
    for fg, idx in ((got[3], got[4]), (want[3], want[4])):
        undecided |= (tied_gt & (kth > 0)).gather(1, idx.long()) & fg
    top2 = overlaps.topk(2, dim=1).values
    undecided |= (mask_pos.sum(1) > 1) & ((top2[:, 0] - top2[:, 1]).abs() <= 1e-6 * top2[:, 0].abs())
    return undecided


def assert_like_ultralytics(args, topk=10, topk2=None, min_decided=0.5, assign=None, assigner_class=None):
    """assign(args, topk=, topk2=) (default: task_aligned_assign) equals ultralytics' assigner_class
    (default: TaskAlignedAssigner) on every anchor it does not leave to a tie."""
    assigner, want = theirs(args, topk, topk2, assigner_class)
    got = (assign or ours)(args, topk=topk, topk2=topk2)
    for name, x, y in zip(NAMES, got, want):
        assert x.dtype == y.dtype and x.shape == y.shape, name
    decided = ~undecided_anchors(assigner, args, topk, got, want)
    assert decided.float().mean() >= min_decided
    half = args[0].dtype in (torch.float16, torch.bfloat16)  # (ultralytics takes their square root in half)
    for name, x, y in zip(NAMES, got, want):
        if name == "target_scores":
            torch.testing.assert_close(x[decided], y[decided], rtol=2e-3 if half else 2e-5, atol=1e-6)
        else:
            assert torch.equal(x[decided], y[decided]), name
    return got


# --------------------------------------------------------------------------------- ultralytics


@needs_ultralytics
@pytest.mark.parametrize(
    "scenario",
    [
        dict(),
        dict(seed=1, batch=3, gts=20, valid=20),
        dict(seed=2, outside=True),
        dict(seed=3, tiny=True),
        dict(seed=4, gts=40, valid=3),
        dict(seed=5, classes=80, gts=50, valid=31),
    ],
    ids=str,
)
def test_equals_ultralytics(scenario):
    got = assert_like_ultralytics(make(**scenario))
    assert got[3].any()  # (a test with positives)


@needs_ultralytics
def test_equals_ultralytics_with_a_thousand_gts_per_image():
    assert_like_ultralytics(make(batch=1, gts=1000, valid=1000, size=640, seed=6), min_decided=0.3)


@needs_ultralytics
@pytest.mark.parametrize("topk, topk2", [(13, None), (10, 4), (1, None), (5, 5)])
def test_topk_and_topk2_equal_ultralytics(topk, topk2):
    assert_like_ultralytics(make(gts=25, valid=20, seed=7), topk, topk2)


@needs_ultralytics
def test_the_ultralytics_face_in_v8_detection_loss():
    """fastloss.ultralytics.TaskAlignedAssigner swapped into the assigner's place: same results."""
    import fastloss.ultralytics

    args = make(seed=16, gts=15, valid=12)
    face = fastloss.ultralytics.TaskAlignedAssigner(topk=10, num_classes=7, alpha=0.5, beta=6.0, stride=[8, 16, 32])
    for x, y in zip(face(*args), ours(args)):
        assert torch.equal(x, y)
    with pytest.raises(TypeError, match="no extra tensors"):
        face(*args, pd_kpts=args[1])


@needs_ultralytics
def test_no_gt_is_ultralytics_own_result():
    args = make(gts=0, valid=0)
    _, want = theirs(args)
    got = ours(args)
    for name, x, y in zip(NAMES, got, want):
        assert x.dtype == y.dtype and torch.equal(x, y), name


@needs_ultralytics
def test_all_padded_gts_assign_nothing():
    args = make(gts=6, valid=0)
    got = assert_like_ultralytics(args, min_decided=1.0)
    assert not got[3].any() and not got[2].any()


@needs_ultralytics
def test_half_scores_as_under_amp():
    """float16 scores with float32 boxes (v8DetectionLoss under autocast): float32 targets."""
    args = make(seed=8, dtype=torch.float16)
    assert_like_ultralytics(args)


# ------------------------------------------------------------------- the reference, exactly


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "scenario",
    [
        dict(),
        dict(quantized=True, seed=1),
        dict(quantized=True, gts=30, valid=30, seed=2),
        dict(tiny=True, seed=3),
        dict(outside=True, seed=4),
        dict(dtype=torch.float64, seed=5),
        dict(dtype=torch.float16, seed=6),
    ],
    ids=str,
)
@pytest.mark.parametrize("topk, topk2", [(10, None), (4, 2), (64, None)])
@pytest.mark.parametrize("sparse", [False, True])
def test_equals_the_reference_ties_included(scenario, topk, topk2, sparse, device):
    """The kernels and the pure-torch reference share the tie rules: equal everywhere, ties included."""
    args = make(**scenario)
    got = ours(args, device, topk=topk, topk2=topk2, sparse=sparse)
    s, p, a, labels, g, m = args
    want = reference(
        s,
        p,
        a,
        labels.squeeze(-1).long(),
        g,
        m.squeeze(-1).bool(),
        topk,
        topk2 or topk,
        s.shape[-1],
        0.5,
        6.0,
        1e-9,
        16.0,
        sparse,
    )
    for name, x, y in zip(NAMES, got, want):
        x = x.cpu()
        assert x.dtype == y.dtype and x.shape == y.shape, name
        if name == "target_scores":
            torch.testing.assert_close(x, y, rtol=2e-5 if s.dtype != torch.float64 else 1e-12, atol=1e-7)
        else:
            assert torch.equal(x, y), name


def test_sparse_targets_are_the_dense_ones_at_the_label():
    args = make(seed=9)
    dense, sparse = ours(args), ours(args, sparse=True)
    assert torch.equal(dense[2].gather(-1, dense[0][..., None])[..., 0], sparse[2])
    assert torch.equal(dense[2].sum(-1), sparse[2])


def test_fewer_anchors_than_topk():
    args = make(size=24, gts=3, valid=2, seed=10)  # 9 + 1 anchors
    got = ours(args, topk=13)
    assert got[0].shape == (2, args[2].shape[0])


def test_nan_boxes_give_defined_results():
    """A NaN GT box has no candidates; a NaN prediction scores 0 (it never outranks a number)."""
    scores, pd, anc, labels, gt, mask = make(seed=11)
    gt[0, 0], pd[1, ::7] = float("nan"), float("nan")
    got = ours((scores, pd, anc, labels, gt, mask))
    assert not (got[4][0] == 0).logical_and(got[3][0]).any()  # nothing to the NaN GT
    assert torch.isfinite(got[2]).all()
    assert not got[3][1, ::7].any() or (got[2][1, ::7] == 0).all()


def test_deterministic_across_thread_counts():
    args = make(batch=3, gts=60, valid=50, size=480, seed=12)
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, threads):
            torch.set_num_threads(n)
            results.append(ours(args, topk2=5))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(x, y) for x, y in zip(*results))


def test_memory_is_the_outputs_and_the_top_k_lists():
    """No (B, M, A) tensor: the peak is the outputs plus O(B·A + B·M·topk) bookkeeping."""
    from fastloss import bench

    args = make(batch=2, gts=300, valid=300, classes=20, size=640, seed=13)
    names = ["pd_scores", "pd_bboxes", "anc_points", "gt_labels", "gt_bboxes", "mask_gt"]
    inputs = dict(zip(names, args))
    outs = ours(args)
    out_bytes = sum(t.numel() * t.element_size() for t in outs)
    peak = bench.peak_bytes(
        lambda **kw: ours(tuple(kw[n] for n in names))[2], inputs, [], torch.device("cpu"), backward=False
    )
    batch, gts, anchors = 2, 300, args[2].shape[0]
    bookkeeping = batch * gts * 10 * 8 + batch * anchors * 24 + batch * gts * 64
    assert peak <= out_bytes + bookkeeping, (peak, out_bytes)
    assert peak < batch * gts * anchors * 4  # less than one (B, M, A) float tensor


# ----------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda a: (a[0][..., 0],) + a[1:], ValueError, "pd_scores must have shape"),
        (lambda a: (a[0], a[1][:, :-1]) + a[2:], ValueError, "must agree on B and A"),
        (lambda a: a[:2] + (a[2][:, :1],) + a[3:], ValueError, "anc_points must have shape"),
        (lambda a: a[:4] + (a[4][:1],) + a[5:], ValueError, "batch size"),
        (lambda a: a[:3] + (a[3][:, :-1],) + a[4:], ValueError, "gt_labels must have shape"),
        (lambda a: a[:5] + (a[5][:, :-1],), ValueError, "mask_gt must have shape"),
        (lambda a: a[:3] + (a[3] + 100,) + a[4:], ValueError, "gt_labels has label 10"),
        (lambda a: a[:3] + (a[3] - 5,) + a[4:], ValueError, "outside \\[0, 7\\)"),
        (lambda a: (a[0].long(),) + a[1:], TypeError, "pd_scores must be a floating"),
        (lambda a: (a[0].to("meta"),) + a[1:], ValueError, "must be on pd_scores' device"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_bad_input_is_a_clear_error(change, error, message):
    with pytest.raises(error, match=message):
        ours(change(make()))


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(topk=0), "topk must be"),
        (dict(topk=65), "topk must be"),
        (dict(topk=5, topk2=6), "topk2 must be"),
        (dict(num_classes=0), "num_classes"),
        (dict(eps=-1.0), "eps must be >= 0"),
        (dict(alpha=float("nan")), "finite"),
    ],
)
def test_bad_options_are_clear_errors(kw, message):
    with pytest.raises(ValueError, match=message):
        ours(make(), **kw)


# --------------------------------------------------------------------------- opcheck, compile


def raw_args(args, sparse=False):
    s, p, a, labels, g, m = args
    return (
        s,
        p,
        a,
        labels.squeeze(-1).long(),
        g,
        m.squeeze(-1).bool(),
        10,
        4,
        s.shape[-1],
        0.5,
        6.0,
        1e-9,
        16.0,
        sparse,
    )


@pytest.mark.parametrize("sparse", [False, True])
def test_opcheck(sparse):
    torch.library.opcheck(torch.ops.fastloss.task_aligned_assign.default, raw_args(make(seed=14), sparse))


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph(dynamic):
    torch._dynamo.reset()
    step = torch.compile(
        lambda *a: fastloss.task_aligned_assign(*a, num_classes=7, topk=10), fullgraph=True, dynamic=dynamic
    )
    for gts in (5, 9):
        args = make(gts=gts, valid=gts - 2, seed=gts)
        for x, y in zip(step(*args), ours(args)):
            assert torch.equal(x, y)


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_cuda_equals_cpu_at_scale():
    """Equal but at near-ties (nvcc's pow and atan are not glibc's: two metrics within 1e-5 may order
    differently), which fastloss.reference.task_aligned.near_ties names."""
    from fastloss.reference.task_aligned import near_ties

    args = make(batch=4, gts=300, valid=250, classes=80, size=640, seed=15)
    for topk2 in (None, 5):
        decided = ~near_ties(*args, topk=10, topk2=topk2)
        assert decided.float().mean() > 0.9
        for x, y in zip(ours(args, "cuda", topk2=topk2), ours(args, topk2=topk2)):
            x, y = x.cpu()[decided], y[decided]
            if x.dtype.is_floating_point:
                torch.testing.assert_close(x, y, rtol=2e-5, atol=1e-6)
            else:
                assert torch.equal(x, y)


def test_near_ties_are_found():
    """The near-tie rule finds an anchor whose metric is a last-place step from its GT's k-th."""
    from fastloss.reference.task_aligned import near_ties, pair_metrics

    args = make(batch=1, gts=3, valid=3, classes=4, size=320, seed=3)
    assert not near_ties(*args, topk=10).any()
    labels, mask = args[3].view(1, -1).long(), args[5].view(1, -1).bool()
    candidate, _, metric = pair_metrics(*args[:3], labels, args[4], mask, 0.5, 6.0, 16.0, torch.float64)
    gt = int((candidate[0].sum(-1) > 10).nonzero()[0])  # a GT with more candidates than its top-k
    ranked = metric[0, gt].argsort(descending=True)
    kth, rival = int(ranked[9]), int(ranked[10])  # its k-th anchor, and the next candidate
    scores, pd = args[0].clone(), args[1].clone()
    pd[0, rival] = pd[0, kth]  # the same box and a score 1e-7 higher: a metric a last place apart
    scores[0, rival] = scores[0, kth] * (1 + 1e-7)
    tied = near_ties(scores, pd, *args[2:], topk=10)
    assert tied[0, rival] and tied[0, kth]
