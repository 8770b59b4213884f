"""ultralytics' YOLO box loss (BboxLoss: CIoU + DFL) on fastloss's fused CIoU, with one line.

ultralytics' BboxLoss calls the module-level name `bbox_iou`; fastloss.ultralytics.bbox_iou has its
signature and numbers:

    import ultralytics.utils.loss, fastloss.ultralytics
    ultralytics.utils.loss.bbox_iou = fastloss.ultralytics.bbox_iou

fastloss never imports ultralytics (AGPL); this example and the tests do, as the user would.
Run: python examples/ultralytics_bboxloss.py
"""

import contextlib

import torch
import ultralytics.utils.loss as yolo_loss

import fastloss.ultralytics


@contextlib.contextmanager
def fastloss_bbox_iou():
    saved = yolo_loss.bbox_iou
    yolo_loss.bbox_iou = fastloss.ultralytics.bbox_iou  # the one line
    try:
        yield
    finally:
        yolo_loss.bbox_iou = saved


def synthetic(generator, batch=2, anchors=400, reg_max=16, classes=3):
    anchor_points = torch.rand(anchors, 2, generator=generator) * 80
    xy = torch.rand(batch, anchors, 2, generator=generator) * 60
    target = torch.cat([xy, xy + torch.rand(batch, anchors, 2, generator=generator) * 20 + 2], -1)
    pred = target + torch.randn(batch, anchors, 4, generator=generator)
    pred = torch.cat(
        [torch.minimum(pred[..., :2], pred[..., 2:] - 1), torch.maximum(pred[..., 2:], pred[..., :2] + 1)], -1
    )
    pred_dist = torch.randn(batch, anchors, 4 * reg_max, generator=generator)
    scores = torch.rand(batch, anchors, classes, generator=generator)
    fg = torch.rand(batch, anchors, generator=generator) > 0.7
    return pred_dist, pred, anchor_points, target, scores, scores.sum(), fg


def loss_and_grad(use_fastloss, reg_max=16):
    pred_dist, pred, anchor_points, target, scores, scores_sum, fg = synthetic(torch.Generator().manual_seed(0))
    pred = pred.requires_grad_()
    with fastloss_bbox_iou() if use_fastloss else contextlib.nullcontext():
        loss_iou, _ = yolo_loss.BboxLoss(reg_max)(
            pred_dist, pred, anchor_points, target, scores, scores_sum, fg, torch.tensor([640, 640]), torch.tensor(8.0)
        )
    loss_iou.backward()
    return loss_iou.item(), pred.grad


def main():
    ours, our_grad = loss_and_grad(True)
    theirs, their_grad = loss_and_grad(False)
    print(
        f"BboxLoss CIoU: fastloss {ours:.6f}, ultralytics {theirs:.6f}, "
        f"max gradient difference {(our_grad - their_grad).abs().max().item():.2e}"
    )
    return ours, theirs, our_grad, their_grad


if __name__ == "__main__":
    main()
