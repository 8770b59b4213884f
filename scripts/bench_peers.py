"""Peer rows that the fastloss package must not import itself, for `python -m fastloss bench --peers
scripts/bench_peers.py` (`make bench` passes it): ultralytics' TaskAlignedAssigner (AGPL-licensed; a
benchmark and test oracle only, run from this repository file, never from the package)."""
from fastloss import bench

try:
    from ultralytics.utils.tal import TaskAlignedAssigner
except ImportError:  # not installed: no rows
    TaskAlignedAssigner = None

if TaskAlignedAssigner is not None:
    assigner = TaskAlignedAssigner(topk=10, num_classes=80, alpha=0.5, beta=6.0, stride=[8, 16, 32])

    def ultralytics_assign(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt):
        return assigner(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt)

    bench.add_peer("task_aligned_assign", "ultralytics", ultralytics_assign)


# ---- the quality-aware losses' peers: their dense-target code, eager and under torch.compile -------
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def _with_compiled(pattern, name, fn):
    bench.add_peer(pattern, name, fn)
    bench.add_peer(pattern, name + " torch.compile", torch.compile(fn))


def _dense(labels, scores, classes, dtype):
    """The dense one_hot(label) · score target the peers take (built every step, as in their heads)."""
    return F.one_hot(labels, classes + 1)[..., :classes].to(dtype) * scores.unsqueeze(-1)


def _mmdet_losses():
    """mmdet 3.3.0's loss files from its wheel (make peers), as the tests load them; None without it."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))
    try:
        from mmdet_peer import load
        return load(tempfile.mkdtemp(prefix="fastloss-mmdet-"))
    except (ImportError, FileNotFoundError):
        return None
    finally:
        sys.path.pop(0)


mmdet = _mmdet_losses()
if mmdet is not None:
    mmdet_vfl = mmdet["varifocal_loss"].varifocal_loss
    mmdet_gfl = mmdet["gfocal_loss"]

    def mmdet_varifocal(pred, labels, scores):
        return mmdet_vfl(pred, _dense(labels, scores, pred.shape[-1], pred.dtype), reduction="mean")

    def mmdet_quality_focal(pred, labels, scores):  # its tensor-target form (the tuple form indexes)
        return mmdet_gfl.quality_focal_loss_tensor_target(pred, _dense(labels, scores, pred.shape[-1], pred.dtype),
                                                          reduction="mean")

    def mmdet_dfl(pred, target):
        return mmdet_gfl.distribution_focal_loss(pred, target, reduction="mean")

    _with_compiled("varifocal", "mmdet (dense target)", mmdet_varifocal)
    _with_compiled("quality_focal", "mmdet (dense target)", mmdet_quality_focal)
    _with_compiled("distribution_focal 100000x4x17", "mmdet", mmdet_dfl)

try:
    from ultralytics.utils.loss import DFLoss
except ImportError:
    DFLoss = None

if DFLoss is not None:
    dfl = DFLoss(16)

    def ultralytics_dfl(pred, target):
        return dfl(pred, target.clone()).sum()  # clone: DFLoss clamps its target in place

    _with_compiled("distribution_focal 100000x4x16", "ultralytics", ultralytics_dfl)
