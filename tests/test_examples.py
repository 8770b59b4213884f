"""The examples in examples/ run (CPU), give their peer's loss at step 0, and training proceeds."""

import importlib
import math
import os
import sys

import pytest
import torch

from helpers import assert_close, needs
from mmdet_peer import load

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


def example(name):
    sys.path.insert(0, EXAMPLES)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(EXAMPLES)


@needs("torchvision")
def test_torchvision_retinanet():
    ours, theirs, history = example("torchvision_retinanet").main()
    assert ours.keys() == theirs.keys() == {"classification", "bbox_regression"}
    for key in ours:
        assert ours[key] == pytest.approx(theirs[key], rel=1e-5)
    assert all(math.isfinite(x) for x in history) and history[-1] < history[0]


@needs("monai")
def test_monai_unet():
    ours, theirs, history = example("monai_unet").main()
    assert ours == pytest.approx(theirs, rel=1e-5)
    assert all(math.isfinite(x) for x in history) and history[-1] < history[0]


def test_nnunet_deep_supervision(tmp_path):
    """Step 0 against nnU-Net 2.8.1's own DeepSupervisionWrapper(DC_and_CE_loss) (from its wheel),
    the core one-call form equal to the wrapper, and training proceeds."""
    from nnunet_peer import load as load_nnunet

    module = example("nnunet_deep_supervision")
    model, images, labels, wrapped, core, history = module.main()
    nnunet = load_nnunet(str(tmp_path))
    torch.manual_seed(0)
    outputs = module.DeepSupervisedNet()(images)
    theirs = module.nnunet_criterion(nnunet, nnunet.MemoryEfficientSoftDiceLoss)(
        outputs, module.targets_per_level(labels, outputs)
    )
    assert wrapped == pytest.approx(theirs.item(), rel=1e-5)
    assert core == pytest.approx(wrapped, rel=1e-6)
    assert all(math.isfinite(x) for x in history) and history[-1] < history[0]


@needs("mmengine")
def test_mmdet_config(tmp_path):
    """The config's losses, built through mmengine's registry, against mmdet 3.3.0's classes built
    from the same config (without the "Fast" prefix) on the same head outputs."""
    module = example("mmdet_config")
    ours = module.build_losses()
    mmdet = load(str(tmp_path))
    classes = {
        "FocalLoss": mmdet["focal_loss"].FocalLoss,
        "GIoULoss": mmdet["iou_loss"].GIoULoss,
        "CrossEntropyLoss": mmdet["cross_entropy_loss"].CrossEntropyLoss,
    }
    theirs = {}
    for name, cfg in module.LOSS_CONFIG.items():
        cfg = dict(cfg)
        theirs[name] = classes[cfg.pop("type").removeprefix("Fast")](**cfg)
    total, grad = module.step(ours, torch.Generator().manual_seed(0))
    want_total, want_grad = module.step(theirs, torch.Generator().manual_seed(0))
    assert total == pytest.approx(want_total, rel=1e-5)
    assert grad == pytest.approx(want_grad, rel=1e-5)
    assert module.main()[1] == pytest.approx(total)


@needs("ultralytics")
def test_ultralytics_bboxloss():
    ours, theirs, our_grad, their_grad = example("ultralytics_bboxloss").main()
    assert ours == pytest.approx(theirs, rel=1e-5)
    assert_close(our_grad, their_grad, torch.float32)


@needs("scipy.optimize")
def test_detr_matching():
    """Each layer's and image's matching equals scipy's on the matchers' own (unpadded) cost block."""
    from scipy.optimize import linear_sum_assignment
    from fastloss.reference.matching_cost import matching_cost as reference

    logits, boxes, targets, layers = example("detr_matching").main()
    for layer, matches in enumerate(layers):
        for i, (rows, cols) in enumerate(matches):
            t = targets[i]
            cost = reference(
                logits[layer, i][None, None],
                boxes[layer, i][None, None],
                t["labels"][None],
                t["boxes"][None],
                torch.ones(1, len(t["labels"]), dtype=torch.bool),
                0,
                0.25,
                2.0,
                2.0,
                5.0,
                2.0,
            )[0, 0]
            want_rows, want_cols = linear_sum_assignment(cost.numpy())
            assert rows.tolist() == want_rows.tolist() and cols.tolist() == want_cols.tolist()
            assert len(rows) == len(t["labels"])


@needs("ultralytics")
def test_ultralytics_training():
    """yolov8n-seg trained a few steps with each criterion: the same losses at every step (ties
    aside, the assignment is ultralytics': few objects, none on a tie), fastloss's criterion in use."""
    ours, theirs, criterion = example("ultralytics_training").main()
    assert criterion == "v8SegmentationLoss"
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert all(torch.isfinite(a).all() for a in ours)
