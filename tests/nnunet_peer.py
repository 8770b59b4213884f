"""nnU-Net v2.8.1's loss modules, loaded from its wheel as the oracle of fastloss.nnunet.

nnunetv2's package imports its whole training stack (batchgenerators, acvl_utils, dynamic_network_
architectures, ...); its loss files need only torch and numpy. This extracts nnunetv2/training/loss/
and the two utilities they import from the wheel (`make peers` downloads it into .peers/, or
FASTLOSS_NNUNET_WHEEL names it) and loads them under stand-in package modules, without running
nnunetv2's package __init__. Only the test suite does this; the package never imports nnU-Net.
"""

import importlib
import os
import sys
import types
import zipfile

WHEEL = os.environ.get("FASTLOSS_NNUNET_WHEEL") or os.path.join(
    os.path.dirname(__file__), os.pardir, ".peers", "nnunetv2-2.8.1-py3-none-any.whl"
)
FILES = ("nnunetv2/training/loss/", "nnunetv2/utilities/helpers.py", "nnunetv2/utilities/ddp_allgather.py")
PACKAGES = ("nnunetv2", "nnunetv2.training", "nnunetv2.training.loss", "nnunetv2.utilities")


def load(cache_dir):
    """A namespace with nnU-Net's DC_and_CE_loss, MemoryEfficientSoftDiceLoss, SoftDiceLoss,
    RobustCrossEntropyLoss and DeepSupervisionWrapper, extracted under cache_dir."""
    if not os.path.exists(WHEEL):
        raise FileNotFoundError(
            f"{WHEEL} is missing: run `make peers` (pip download --no-deps nnunetv2==2.8.1 -d .peers)"
        )
    with zipfile.ZipFile(WHEEL) as z:
        for member in z.namelist():
            if member.startswith(FILES):
                z.extract(member, cache_dir)
    saved = {k: sys.modules.get(k) for k in list(sys.modules) if k == "nnunetv2" or k.startswith("nnunetv2.")}
    try:
        for name in PACKAGES:
            module = types.ModuleType(name)
            module.__path__ = [os.path.join(cache_dir, *name.split("."))]
            sys.modules[name] = module
        compound = importlib.import_module("nnunetv2.training.loss.compound_losses")
        dice = importlib.import_module("nnunetv2.training.loss.dice")
        deep = importlib.import_module("nnunetv2.training.loss.deep_supervision")
        return types.SimpleNamespace(
            DC_and_CE_loss=compound.DC_and_CE_loss,
            MemoryEfficientSoftDiceLoss=dice.MemoryEfficientSoftDiceLoss,
            SoftDiceLoss=dice.SoftDiceLoss,
            RobustCrossEntropyLoss=compound.RobustCrossEntropyLoss,
            DeepSupervisionWrapper=deep.DeepSupervisionWrapper,
        )
    finally:
        for k in [k for k in sys.modules if k == "nnunetv2" or k.startswith("nnunetv2.")]:
            del sys.modules[k]
        sys.modules.update({k: v for k, v in saved.items() if v is not None})
