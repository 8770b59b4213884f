"""Peer rows that the fastloss package must not import itself, for `python -m fastloss bench --peers
scripts/bench_peers.py` (`make bench` passes it): ultralytics' TaskAlignedAssigner and DFLoss
(AGPL-licensed; a benchmark and test oracle only, run from this repository file, never from the
package), and mmdet's and nnU-Net's loss files from their wheels (`make peers`)."""

from fastloss import bench

try:
    from ultralytics.utils.tal import TaskAlignedAssigner
except ImportError:  # not installed: no rows
    TaskAlignedAssigner = None

if TaskAlignedAssigner is not None:
    assigner = TaskAlignedAssigner(topk=10, num_classes=80, alpha=0.5, beta=6.0, stride=[8, 16, 32])

    def ultralytics_assign(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt):
        return assigner(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt)

    bench.add_peer("task_aligned_assign 16x8400", "ultralytics", ultralytics_assign)

try:
    from ultralytics.utils.tal import RotatedTaskAlignedAssigner
except ImportError:
    RotatedTaskAlignedAssigner = None

if RotatedTaskAlignedAssigner is not None:
    rotated_assigner = RotatedTaskAlignedAssigner(topk=10, num_classes=15, alpha=0.5, beta=6.0, stride=[8, 16, 32])

    def ultralytics_rotated_assign(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt):
        return rotated_assigner(pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt)

    bench.add_peer("rotated_task_aligned_assign", "ultralytics", ultralytics_rotated_assign)


# ---- the quality-aware losses' peers: their dense-target code, eager and under torch.compile -------
import os
import sys
import tempfile

import torch
import torch.nn.functional as F


def _with_compiled(pattern, name, fn):
    bench.add_peer(pattern, name, fn)
    bench.add_peer(pattern, name + " torch.compile", torch.compile(fn))


def _dense(labels, scores, classes, dtype):
    """The dense one_hot(label) · score target the peers take (built every step, as in their heads)."""
    return F.one_hot(labels, classes + 1)[..., :classes].to(dtype) * scores.unsqueeze(-1)


def _from_wheel(loader):
    """A peer's loss files from its wheel (make peers) through tests/<loader>.py, as the tests load
    them; None without the wheel."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))
    try:
        return __import__(loader).load(tempfile.mkdtemp(prefix=f"fastloss-{loader}-"))
    except (ImportError, FileNotFoundError):
        return None
    finally:
        sys.path.pop(0)


mmdet = _from_wheel("mmdet_peer")  # mmdet 3.3.0
if mmdet is not None:
    mmdet_vfl = mmdet["varifocal_loss"].varifocal_loss
    mmdet_gfl = mmdet["gfocal_loss"]

    def mmdet_varifocal(pred, labels, scores):
        return mmdet_vfl(pred, _dense(labels, scores, pred.shape[-1], pred.dtype), reduction="mean")

    def mmdet_quality_focal(pred, labels, scores):  # its tensor-target form (the tuple form indexes)
        return mmdet_gfl.quality_focal_loss_tensor_target(
            pred, _dense(labels, scores, pred.shape[-1], pred.dtype), reduction="mean"
        )

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


# ---- mmrotate's GDLoss and KFLoss, from its wheel as the tests load them ----------------------------
mmrotate = _from_wheel("mmrotate_peer")  # mmrotate 0.3.4
if mmrotate is not None:
    for kind in ("kld", "gwd"):
        _with_compiled(f"GDLoss {kind}", "mmrotate", mmrotate["gaussian_dist_loss"].GDLoss(kind, fun="log1p", tau=1.0))
    _with_compiled("KFLoss", "mmrotate", mmrotate["kf_iou_loss"].KFLoss())


# ---- nnU-Net's DC_and_CE_loss (its trainer's setting), from its wheel as the tests load it ---------


nnunet = _from_wheel("nnunet_peer")  # nnU-Net 2.8.1
if nnunet is not None:
    nnunet_loss = nnunet.DC_and_CE_loss(
        {"batch_dice": False, "smooth": 1e-5, "do_bg": False, "ddp": False},
        {},
        weight_ce=1,
        weight_dice=1,
        dice_class=nnunet.MemoryEfficientSoftDiceLoss,
    )

    def nnunet_dc_and_ce(input, target):
        return nnunet_loss(input, target.unsqueeze(1))

    bench.add_peer("dice_ce softmax", "nnU-Net DC_and_CE_loss", nnunet_dc_and_ce)


# ---- ultralytics' training criteria (v8DetectionLoss, v8SegmentationLoss on the same stand-in model;
# RT-DETR's RTDETRDetectionLoss) -----------------------------------------------------------------------
try:
    from ultralytics.models.utils import loss as ultralytics_detr_loss
    from ultralytics.utils import loss as ultralytics_loss
except ImportError:  # not installed: no rows
    ultralytics_loss = None

if ultralytics_loss is not None:
    from fastloss.bench.ultralytics import criterion_call, rtdetr_call

    _with_compiled("v8DetectionLoss", "ultralytics", criterion_call(ultralytics_loss.v8DetectionLoss))
    _with_compiled("v8SegmentationLoss", "ultralytics", criterion_call(ultralytics_loss.v8SegmentationLoss))
    _with_compiled("v8OBBLoss", "ultralytics", criterion_call(ultralytics_loss.v8OBBLoss, nc=15))
    # (eager only: its matcher copies the cost to the host and loops over scipy, which no graph holds)
    bench.add_peer("RTDETRDetectionLoss", "ultralytics", rtdetr_call(ultralytics_detr_loss.RTDETRDetectionLoss))


# ---- scipy's linear_sum_assignment, one problem at a time (the DETR-family matchers' loop) ---------
try:
    from scipy.optimize import linear_sum_assignment as scipy_linear_sum_assignment
except ImportError:  # not installed: no rows
    scipy_linear_sum_assignment = None

if scipy_linear_sum_assignment is not None:

    def scipy_assignment(cost, num_targets):
        """Each problem's block to the host and through scipy, as the matchers run it."""
        blocks, counts = cost.detach().cpu(), num_targets.cpu().reshape(-1).tolist()
        blocks = blocks.reshape(-1, *blocks.shape[-2:])
        pairs = [scipy_linear_sum_assignment(blocks[p, :, :t].numpy()) for p, t in enumerate(counts)]
        return torch.tensor([len(r) for r, _ in pairs])

    bench.add_peer("linear_sum_assignment", "scipy", scipy_assignment)


# ---- ultralytics' probiou / batch_probiou (oriented boxes) --------------------------------------------
try:
    from ultralytics.utils import metrics as ultralytics_metrics
except ImportError:  # not installed: no rows
    ultralytics_metrics = None

if ultralytics_metrics is not None:
    bench.add_peer("batch_probiou", "ultralytics", ultralytics_metrics.batch_probiou)
    bench.add_peer("probiou aligned", "ultralytics", ultralytics_metrics.probiou)
