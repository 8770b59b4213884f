"""mmdet 3.3.0's loss modules, loaded from its wheel as the oracle of fastloss.mmdet.

mmdet itself cannot be installed here (it needs a compiled mmcv < 2.2, which no wheel provides for
this torch), but its loss files are pure torch: this loads mmdet/models/losses/*.py and
mmdet/structures/bbox/bbox_overlaps.py from the wheel (`make peers` downloads it into .peers/, or
FASTLOSS_MMDET_WHEEL names it) under stand-in `mmdet`, `mmdet.registry` and `mmcv.ops` modules, without
running mmdet's package __init__. Only the test suite does this; the package never imports mmdet.
"""

import importlib
import os
import sys
import types
import zipfile

WHEEL = os.environ.get("FASTLOSS_MMDET_WHEEL") or os.path.join(
    os.path.dirname(__file__), os.pardir, ".peers", "mmdet-3.3.0-py3-none-any.whl"
)
NAMES = (
    "utils",
    "accuracy",
    "focal_loss",
    "cross_entropy_loss",
    "iou_loss",
    "smooth_l1_loss",
    "mse_loss",
    "dice_loss",
    "balanced_l1_loss",
    "varifocal_loss",
    "gfocal_loss",
)


class _Registry:
    def register_module(self, *args, **kwargs):
        return (lambda cls: cls) if not args or not isinstance(args[0], type) else args[0]


def _module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    return m


def load(cache_dir):
    """{file name: module} of mmdet's loss files, extracted under cache_dir."""
    if not os.path.exists(WHEEL):
        raise FileNotFoundError(f"{WHEEL} is missing: run `make peers` (pip download --no-deps mmdet==3.3.0 -d .peers)")
    with zipfile.ZipFile(WHEEL) as z:
        for member in z.namelist():
            if member.startswith(("mmdet/models/losses/", "mmdet/structures/bbox/bbox_overlaps.py")):
                z.extract(member, cache_dir)
    saved = {k: sys.modules.get(k) for k in list(sys.modules) if k == "mmdet" or k.startswith(("mmdet.", "mmcv"))}
    try:
        root = os.path.join(cache_dir, "mmdet")

        def unavailable(*args, **kwargs):
            raise RuntimeError("mmcv's compiled op is not available in the tests")

        sys.modules.update(
            {
                "mmdet": _module("mmdet", __path__=[root]),
                "mmdet.registry": _module("mmdet.registry", MODELS=_Registry()),
                "mmdet.models": _module("mmdet.models", __path__=[os.path.join(root, "models")]),
                "mmdet.models.losses": _module(
                    "mmdet.models.losses", __path__=[os.path.join(root, "models", "losses")]
                ),
                "mmdet.structures": _module("mmdet.structures", __path__=[]),
                "mmcv": _module("mmcv", __path__=[]),
                "mmcv.ops": _module("mmcv.ops", sigmoid_focal_loss=unavailable, softmax_focal_loss=unavailable),
            }
        )
        spec = importlib.util.spec_from_file_location(
            "mmdet.structures.bbox.bbox_overlaps", os.path.join(root, "structures", "bbox", "bbox_overlaps.py")
        )
        overlaps = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(overlaps)
        sys.modules["mmdet.structures.bbox"] = _module("mmdet.structures.bbox", bbox_overlaps=overlaps.bbox_overlaps)
        return {name: importlib.import_module(f"mmdet.models.losses.{name}") for name in NAMES}
    finally:  # leave no stand-in behind for other tests (e.g. the registry test)
        for k in [k for k in sys.modules if k == "mmdet" or k.startswith(("mmdet.", "mmcv"))]:
            del sys.modules[k]
        sys.modules.update({k: v for k, v in saved.items() if v is not None})
