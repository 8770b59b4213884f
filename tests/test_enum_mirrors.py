"""The integer codes the ops take are C++ enums (csrc/) mirrored by hand in Python: this reads each
enum from its header and checks its Python mirror, name by name and value by value."""

import os
import re

import pytest

from fastloss import _common, matching
from fastloss.reference import box_iou, box_matrix, compound, overlap, sigmoid_focal

CSRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "csrc")


def cpp_enum(header, name):
    """{member: value} of `enum name : type { ... }` in csrc/<header> (implicit values count on)."""
    with open(os.path.join(CSRC, header)) as f:
        text = f.read()
    found = re.search(r"enum\s+" + name + r"\s*:\s*\w+\s*\{([^}]*)\}", text)
    assert found, f"no enum {name} in csrc/{header}"
    members, value = {}, -1
    for item in re.sub(r"//[^\n]*", "", found.group(1)).split(","):
        item = item.strip()
        if not item:
            continue
        member, _, given = (part.strip() for part in item.partition("="))
        value = int(given) if given else value + 1
        members[member] = value
    return members


def cpp_constant(header, name):
    """The value of `constexpr T name = N;` or `= T(N) << M;` in csrc/<header>."""
    with open(os.path.join(CSRC, header)) as f:
        found = re.search(r"constexpr\s+\w+\s+" + name + r"\s*=\s*(?:\w+\()?(\d+)\)?(?:\s*<<\s*(\d+))?\s*;", f.read())
    assert found, f"no constexpr {name} in csrc/{header}"
    return int(found.group(1)) << int(found.group(2) or 0)


def spelled(name):
    """kFocalEIoU, FOCAL_EIOU and "focal_eiou" all spell focaleiou."""
    return re.sub(r"^k(?=[A-Z])", "", name).replace("_", "").lower()


# (header, C++ enum, its Python mirror as {name: code}, C++ members the mirror leaves out on purpose)
MIRRORS = [
    ("common/reduction.h", "Reduction", _common.REDUCTIONS, ()),
    ("common/reduction.h", "Reduction", {"none": _common.NONE, "sum": _common.SUM, "mean": _common.MEAN}, ()),
    ("math/box_iou.h", "Kind", box_iou.KINDS, ()),
    ("math/box_iou.h", "IouMode", box_iou.MODES, ()),
    ("math/box_iou.h", "BoxFormat", box_iou.FORMATS, ()),
    ("math/box_iou.h", "Convention", box_iou.CONVENTIONS, ()),
    ("math/box_matrix.h", "Kind", box_matrix.KINDS, ()),
    ("math/box_matrix.h", "Convention", box_matrix.CONVENTIONS, ()),
    ("math/overlap.h", "Activation", overlap.ACTIVATIONS, ()),
    ("math/overlap_score.h", "Loss", overlap.LOSS_CODES, ()),
    ("math/matching_cost.h", "ClassCost", matching.CLASS_COSTS, ()),
    (
        "math/sigmoid_focal.h",
        "Variant",
        {n: getattr(sigmoid_focal, n) for n in ("FOCAL", "VARIFOCAL", "QUALITY_FOCAL")},
        (),
    ),
    (
        "math/sigmoid_focal.h",
        "VariantFlag",
        {n: getattr(sigmoid_focal, n) for n in ("IOU_WEIGHTED", "LABEL_MASK", "DETACH_WEIGHT", "NO_IGNORE_INDEX")},
        (),
    ),
]


@pytest.mark.parametrize("header, enum, mirror, left_out", MIRRORS, ids=[f"{h}:{e}" for h, e, *_ in MIRRORS])
def test_python_mirror_matches_the_cpp_enum(header, enum, mirror, left_out):
    cpp = {spelled(name): value for name, value in cpp_enum(header, enum).items() if name not in left_out}
    assert {spelled(name): value for name, value in mirror.items()} == cpp


def test_compound_terms_match_overlap_ce():
    """The focal term of Dice + focal is named by its activation in Python, by its loss in C++."""
    cpp = cpp_enum("math/overlap_ce.h", "Term")
    assert compound.TERMS == {"softmax": cpp["kSoftmaxCe"], "sigmoid": cpp["kSigmoidFocal"]}


def test_variant_mask_covers_the_kinds_and_no_flag():
    mask = cpp_constant("math/sigmoid_focal.h", "kVariantMask")
    assert sigmoid_focal.VARIANT_MASK == mask
    assert all(code & ~mask == 0 for code in cpp_enum("math/sigmoid_focal.h", "Variant").values())
    assert all(code & mask == 0 for code in cpp_enum("math/sigmoid_focal.h", "VariantFlag").values())


def test_the_parser_reads_implicit_values():
    fields = cpp_enum("math/box_matrix.h", "Field")
    assert fields["kX1"] == 0 and fields["kY1"] == 1 and fields["kFields"] == len(fields) - 1
