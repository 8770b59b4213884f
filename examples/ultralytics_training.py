"""A YOLOv8n-seg model trained with fastloss's criterion (detection + masks), with one line.

ultralytics builds its training criterion in the model's `init_criterion`; fastloss.ultralytics has
one with ultralytics' choice of criterion, arguments and numbers:

    import ultralytics.nn.tasks, fastloss.ultralytics
    ultralytics.nn.tasks.SegmentationModel.init_criterion = fastloss.ultralytics.init_criterion
    ultralytics.nn.tasks.DetectionModel.init_criterion = fastloss.ultralytics.init_criterion

This example builds the model from its yaml (no weights, no download), trains a few SGD steps on
synthetic images and masks with ultralytics' criterion and with fastloss's, and prints both losses.
fastloss never imports ultralytics (AGPL); this example and the tests do, as the user would.
Run: python examples/ultralytics_training.py
"""

import copy

import torch
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import SegmentationModel

import fastloss.ultralytics

IMGSZ, STEPS = 128, 4


def synthetic_batch(generator, images=2, objects=3):
    """Images, and per object a class, a normalised xywh box and its mask (overlapping: object i of
    an image drawn as i + 1 in the image's plane, at a quarter of the image's size)."""
    side = IMGSZ // 4
    xy = torch.rand(images * objects, 2, generator=generator) * 0.6 + 0.2
    wh = torch.rand(images * objects, 2, generator=generator) * 0.3 + 0.1
    masks = torch.zeros(images, side, side)
    grid = torch.arange(side) + 0.5
    for i in range(images * objects):
        inside = ((grid - xy[i, 1] * side).abs() <= wh[i, 1] * side / 2)[:, None] & (
            (grid - xy[i, 0] * side).abs() <= wh[i, 0] * side / 2
        )[None, :]
        masks[i // objects][inside] = i % objects + 1
    return {
        "img": torch.rand(images, 3, IMGSZ, IMGSZ, generator=generator),
        "batch_idx": torch.arange(images).repeat_interleave(objects).float(),
        "cls": torch.randint(0, 3, (images * objects, 1), generator=generator).float(),
        "bboxes": torch.cat([xy, wh], 1),
        "masks": masks,
    }


def train(model, steps=STEPS):
    """SGD steps on synthetic batches (the same ones for every model); each step's loss vector."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    history = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss, items = model.loss(synthetic_batch(generator))
        loss.sum().backward()
        optimizer.step()
        history.append(loss.detach())
    return history


def main():
    torch.manual_seed(0)
    stock = SegmentationModel("yolov8n-seg.yaml", nc=3, verbose=False)
    stock.args = get_cfg()
    ours = copy.deepcopy(stock)
    ours.init_criterion = lambda: fastloss.ultralytics.init_criterion(ours)  # the one line, for this model
    theirs_history, ours_history = train(stock.train()), train(ours.train())
    for step, (a, b) in enumerate(zip(ours_history, theirs_history)):
        print(f"step {step}: fastloss {a.sum().item():.4f}, ultralytics {b.sum().item():.4f}")
    return ours_history, theirs_history, type(ours.criterion).__name__


if __name__ == "__main__":
    main()
