"""A torchvision RetinaNet trained for a few steps on synthetic images, its losses from fastloss.

torchvision's detection heads call `sigmoid_focal_loss` and `generalized_box_iou_loss` by their
module-level names; fastloss's top-level functions are drop-ins with torchvision's numbers, so two
assignments switch a torchvision detector to the fused kernels:

    torchvision.models.detection.retinanet.sigmoid_focal_loss = fastloss.sigmoid_focal_loss
    torchvision.models.detection._utils.generalized_box_iou_loss = fastloss.generalized_box_iou_loss

Run: python examples/torchvision_retinanet.py  (CPU, well under a minute; nothing is downloaded)
"""

import contextlib

import torch
import torchvision
from torchvision.models.detection import _utils as detection_utils, retinanet

import fastloss


@contextlib.contextmanager
def fastloss_losses():
    """torchvision's RetinaNet (and FCOS) with fastloss's focal and GIoU losses, restored afterwards."""
    saved = retinanet.sigmoid_focal_loss, detection_utils.generalized_box_iou_loss
    retinanet.sigmoid_focal_loss = fastloss.sigmoid_focal_loss
    detection_utils.generalized_box_iou_loss = fastloss.generalized_box_iou_loss
    try:
        yield
    finally:
        retinanet.sigmoid_focal_loss, detection_utils.generalized_box_iou_loss = saved


def synthetic_batch(generator, batch=2, size=128, classes=3):
    images = [torch.rand(3, size, size, generator=generator) for _ in range(batch)]
    targets = []
    for _ in range(batch):
        n = 3
        xy = torch.rand(n, 2, generator=generator) * size * 0.6
        wh = torch.rand(n, 2, generator=generator) * size * 0.3 + 8
        targets.append(
            {"boxes": torch.cat([xy, xy + wh], 1), "labels": torch.randint(1, classes, (n,), generator=generator)}
        )
    return images, targets


def make_model(seed=0, classes=3):
    torch.manual_seed(seed)
    model = torchvision.models.detection.retinanet_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=classes, min_size=128, max_size=128
    )
    model.head.regression_head._loss_type = "giou"  # RetinaNet v2's box loss
    return model


def losses_at_step0(use_fastloss):
    """The first step's losses (same weights, same batch), for comparing with torchvision's own."""
    model = make_model()
    model.train()
    images, targets = synthetic_batch(torch.Generator().manual_seed(1))
    with fastloss_losses() if use_fastloss else contextlib.nullcontext():
        losses = model(images, targets)
    return {k: v.item() for k, v in losses.items()}


def train(steps=3):
    """A few SGD steps with fastloss's losses; returns the total loss of each step."""
    model = make_model()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    images, targets = synthetic_batch(g)
    history = []
    with fastloss_losses():
        for _ in range(steps):
            losses = model(images, targets)
            total = sum(losses.values())
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            history.append(total.item())
    return history


def main():
    torch.set_num_threads(max(1, torch.get_num_threads()))
    ours, theirs = losses_at_step0(True), losses_at_step0(False)
    print("step 0, fastloss:   ", ours)
    print("step 0, torchvision:", theirs)
    history = train()
    print("training (fastloss losses):", [round(x, 4) for x in history])
    return ours, theirs, history


if __name__ == "__main__":
    main()
