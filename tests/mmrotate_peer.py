"""mmrotate 0.3.4's Gaussian-distance and KFIoU loss files, loaded from its wheel as the oracle of
fastloss.mmrotate (as tests/mmdet_peer.py loads mmdet's).

mmrotate cannot be installed here (it needs mmcv-full 1.x, which no wheel provides for this torch),
but gaussian_dist_loss.py and kf_iou_loss.py are pure torch: this loads them from the wheel (`make
peers` downloads it into .peers/, or FASTLOSS_MMROTATE_WHEEL names it) over mmdet 3.3.0's
weighted_loss (mmdet_peer; the same weight_reduce_loss as the mmdet 2.x mmrotate pins) and a
stand-in `mmrotate.models.builder`. Only the test suite does this; the package never imports mmrotate.
"""

import importlib
import os
import sys
import zipfile

import mmdet_peer

WHEEL = os.environ.get("FASTLOSS_MMROTATE_WHEEL") or os.path.join(
    os.path.dirname(__file__), os.pardir, ".peers", "mmrotate-0.3.4-py3-none-any.whl"
)
NAMES = ("gaussian_dist_loss", "kf_iou_loss")


def load(cache_dir):
    """{file name: module} of mmrotate's two loss files, extracted under cache_dir."""
    if not os.path.exists(WHEEL):
        raise FileNotFoundError(
            f"{WHEEL} is missing: run `make peers` (pip download --no-deps mmrotate==0.3.4 -d .peers)"
        )
    utils = mmdet_peer.load(cache_dir)["utils"]
    with zipfile.ZipFile(WHEEL) as z:
        for name in NAMES:
            z.extract(f"mmrotate/models/losses/{name}.py", cache_dir)
    root = os.path.join(cache_dir, "mmrotate")
    stand_ins = {
        "mmdet": mmdet_peer._module("mmdet", __path__=[]),
        "mmdet.models": mmdet_peer._module("mmdet.models", __path__=[]),
        "mmdet.models.losses": mmdet_peer._module("mmdet.models.losses", __path__=[]),
        "mmdet.models.losses.utils": utils,
        "mmrotate": mmdet_peer._module("mmrotate", __path__=[root]),
        "mmrotate.models": mmdet_peer._module("mmrotate.models", __path__=[os.path.join(root, "models")]),
        "mmrotate.models.builder": mmdet_peer._module("mmrotate.models.builder", ROTATED_LOSSES=mmdet_peer._Registry()),
        "mmrotate.models.losses": mmdet_peer._module(
            "mmrotate.models.losses", __path__=[os.path.join(root, "models", "losses")]
        ),
    }
    saved = {k: sys.modules.get(k) for k in stand_ins}
    try:
        sys.modules.update(stand_ins)
        return {name: importlib.import_module(f"mmrotate.models.losses.{name}") for name in NAMES}
    finally:  # leave no stand-in behind
        for k in stand_ins:
            del sys.modules[k]
        for name in NAMES:
            sys.modules.pop(f"mmrotate.models.losses.{name}", None)
        sys.modules.update({k: v for k, v in saved.items() if v is not None})
