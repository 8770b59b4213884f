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
