"""The README's Python examples run as printed and do what their comments say."""

import ast
import os
import re

import pytest
import torch

from helpers import peer

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")
PEERS = {"torchvision", "ultralytics", "mmengine", "monai"}


def blocks():
    with open(README, encoding="utf-8") as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def run(code):
    """Runs one block in a fresh namespace; module attributes it assigns (the one-line switches)
    are restored afterwards, so the rest of the suite sees the peers unpatched."""
    tree = ast.parse(code)
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    for node in imports:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
        for name in names:
            if name.split(".")[0] in PEERS and peer(name) is None:
                pytest.skip(f"{name} cannot be imported here")
    namespace = {}
    exec(compile(ast.Module(imports, []), README, "exec"), namespace)
    saved = []
    for node in ast.walk(tree):
        for target in getattr(node, "targets", []):
            if isinstance(target, ast.Attribute):
                owner = eval(compile(ast.Expression(target.value), README, "eval"), namespace)
                saved.append((owner, target.attr, getattr(owner, target.attr)))
    try:
        exec(compile(tree, README, "exec"), namespace)
    finally:
        for owner, attr, value in reversed(saved):
            setattr(owner, attr, value)
    return namespace


def check_core(ns):
    assert ns["loss"].dim() == 0 and torch.isfinite(ns["loss"])
    assert torch.isfinite(ns["logits"].grad).all() and torch.isfinite(ns["pred"].grad).all()


def check_torchvision(ns):
    import torchvision

    torch.testing.assert_close(ns["iou"], torchvision.ops.box_iou(ns["boxes"], ns["boxes"]))


def check_mmdet(ns):
    import fastloss.mmdet

    assert isinstance(ns["focal"], fastloss.mmdet.FocalLoss) and isinstance(ns["giou"], fastloss.mmdet.GIoULoss)
    assert ns["focal"].gamma == 2.0 and ns["giou"].loss_weight == 2.0


def check_segmentation(ns):
    assert torch.isfinite(ns["logits"].grad).all()
    assert all(torch.isfinite(level.grad).all() for level in ns["levels"][:2])


def check_ultralytics_detr(ns):
    assert ns["cost"].shape == (6, 2, 300, 20) and torch.isfinite(ns["cost"]).all()


CHECKS = [check_core, check_torchvision, check_mmdet, check_segmentation, check_ultralytics_detr]


def test_every_example_is_checked():
    assert len(blocks()) == len(CHECKS)


@pytest.mark.parametrize("index", range(len(CHECKS)), ids=[c.__name__[6:] for c in CHECKS])
def test_readme_example(index):
    CHECKS[index](run(blocks()[index]))
