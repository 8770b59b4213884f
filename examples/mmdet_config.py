"""fastloss in an mmdetection 3.x config: the loss modules built through mmengine's registry.

In a real mmdet project, two config lines switch a head's losses (the classes register themselves in
mmdet's MODELS registry as "Fast" + mmdet's name when fastloss.mmdet is imported):

    custom_imports = dict(imports=["fastloss.mmdet"], allow_failed_imports=False)
    model = dict(bbox_head=dict(
        loss_cls=dict(type="FastFocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type="FastGIoULoss", loss_weight=2.0)))

mmdet itself needs a compiled mmcv (none exists for this torch), so this example builds the same
config entries through an mmengine Registry of its own, registered with fastloss.mmdet.register.
Run: python examples/mmdet_config.py
"""

import torch
from mmengine import Registry

import fastloss.mmdet

LOSS_CONFIG = dict(
    loss_cls=dict(type="FastFocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
    loss_bbox=dict(type="FastGIoULoss", loss_weight=2.0),
    loss_centerness=dict(type="FastCrossEntropyLoss", use_sigmoid=True, loss_weight=1.0),
)


def build_losses(registry=None):
    registry = registry or Registry("model")
    fastloss.mmdet.register(registry)
    return {name: registry.build(cfg) for name, cfg in LOSS_CONFIG.items()}


def synthetic_head_outputs(generator, anchors=500, classes=4):
    """What an FCOS-style head hands its losses: class scores, labels (classes = background),
    decoded boxes of the positives with their targets, centerness."""
    scores = torch.randn(anchors, classes, generator=generator, requires_grad=True)
    labels = torch.randint(0, classes + 1, (anchors,), generator=generator)
    positives = int((labels < classes).sum())
    xy = torch.rand(positives, 2, generator=generator) * 100
    target_boxes = torch.cat([xy, xy + torch.rand(positives, 2, generator=generator) * 50 + 5], 1)
    pred_boxes = (target_boxes + torch.randn(positives, 4, generator=generator) * 2).requires_grad_()
    centerness = torch.randn(positives, generator=generator, requires_grad=True)
    centerness_target = torch.rand(positives, generator=generator)
    return scores, labels, pred_boxes, target_boxes, centerness, centerness_target, positives


def step(losses, generator):
    scores, labels, pred, target, centerness, centerness_target, positives = synthetic_head_outputs(generator)
    avg_factor = torch.tensor(float(positives))  # a tensor: no host sync in the loss
    total = (
        losses["loss_cls"](scores, labels, avg_factor=avg_factor)
        + losses["loss_bbox"](pred, target, weight=centerness_target, avg_factor=centerness_target.sum())
        + losses["loss_centerness"](centerness, centerness_target, avg_factor=avg_factor)
    )
    total.backward()
    return total.item(), scores.grad.abs().sum().item()


def main():
    losses = build_losses()
    for name, module in losses.items():
        print(f"{name}: {module}")
    total, grad = step(losses, torch.Generator().manual_seed(0))
    print(f"total loss {total:.6f}, |d loss / d scores| {grad:.6f}")
    return losses, total


if __name__ == "__main__":
    main()
