"""Benchmark cases of fastloss.ultralytics' training criteria at YOLOv8's training sizes: batch 16, a
640² image's 8,400 anchors, 80 classes; detection at 10 / 100 / 1,000 GTs per image, segmentation
(160² prototypes, overlapping masks) at 32 and 100 instances; RT-DETR's criterion at batch 16, 300
queries, 80 classes, 6 decoder layers plus the encoder's output and the denoising groups of up to 20
targets per image. Forward + backward of the criterion alone. ultralytics' own criterion (AGPL: the
package never imports it) joins from scripts/bench_peers.py, eager and under torch.compile. Not in the
default run (minutes per case on a CPU): `python -m fastloss bench --case v8 --peers
scripts/bench_peers.py` (`--case RTDETR` for RT-DETR's)."""

import types

import torch

from .. import _backend
from .. import ultralytics as face
from . import Case, register

BATCH, CLASSES, IMGSZ, STRIDES, MASKS = 16, 80, 640, (8, 16, 32), 32


class StandInModel(torch.nn.Module):
    """What a criterion's constructor reads of a DetectionModel / SegmentationModel: the head's
    strides, classes, DFL bins and mask prototypes, the hyperparameters (ultralytics' defaults), and a
    parameter for the device."""

    def __init__(self, nc=CLASSES, reg_max=16, device="cpu"):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1, device=device))
        head = types.SimpleNamespace(stride=torch.tensor(STRIDES, dtype=torch.float), nc=nc, reg_max=reg_max)
        head.nm = MASKS
        self.model = [head]
        self.args = types.SimpleNamespace(box=7.5, cls=0.5, dfl=1.5, angle=1.0, overlap_mask=True, epochs=100)


def criterion_inputs(gts, instances=None, images=BATCH, imgsz=IMGSZ, classes=CLASSES, oriented=False):
    """The head's training outputs (random logits, distances around the targets' scale) and a batch of
    flat targets, `gts` per image; with `instances`, the mask coefficients, 160² prototypes and one
    overlapping-mask plane per image; `oriented`: xywhr targets and the head's angles."""

    def make(device, dtype, small):
        batch, size, per_image = (2, 128, min(gts, 6)) if small else (images, imgsz, gts)
        g = torch.Generator().manual_seed(gts)
        anchors = sum((size // s) ** 2 for s in STRIDES)
        n = batch * per_image
        xy = torch.rand(n, 2, generator=g) * 0.8 + 0.1
        wh = torch.rand(n, 2, generator=g) * 0.25 + 0.01
        boxes = [xy, wh, (torch.rand(n, 1, generator=g) - 0.5) * 3.14159] if oriented else [xy, wh]
        inputs = dict(
            boxes=torch.randn(batch, 4 * 16, anchors, generator=g) * 2,
            scores=torch.randn(batch, classes, anchors, generator=g) - 4,
            batch_idx=torch.arange(batch).repeat_interleave(per_image).float(),
            cls=torch.randint(0, classes, (n, 1), generator=g).float(),
            bboxes=torch.cat(boxes, 1),
        )
        if oriented:
            inputs["angle"] = (torch.rand(batch, 1, anchors, generator=g) - 0.25) * 3.14159
        if instances is not None:
            side = size // 4
            inputs["mask_coefficient"] = torch.randn(batch, MASKS, anchors, generator=g) / 4
            inputs["proto"] = torch.randn(batch, MASKS, side, side, generator=g)
            inputs["masks"] = torch.randint(0, instances + 1, (batch, side, side), generator=g).float()
        head = ("boxes", "scores", "angle", "mask_coefficient", "proto")  # (each gets a gradient)
        return {
            k: v.to(device=device, dtype=dtype).requires_grad_() if k in head else v.to(device)
            for k, v in inputs.items()
        }

    return make


def split(inputs, size):
    """(preds, batch) as a criterion takes them, from a case's flat inputs."""
    feats = [inputs["boxes"].new_empty(inputs["boxes"].shape[0], 0, size // s, size // s) for s in STRIDES]
    preds = dict(boxes=inputs["boxes"], scores=inputs["scores"], feats=feats)
    if "angle" in inputs:
        preds["angle"] = inputs["angle"]
    batch = {k: inputs[k] for k in ("batch_idx", "cls", "bboxes")}
    if "proto" in inputs:
        preds.update(mask_coefficient=inputs["mask_coefficient"], proto=inputs["proto"])
        batch["masks"] = inputs["masks"]
    return preds, batch


def image_size(inputs):
    """The image side of a case's inputs (its anchors are those of a square image at STRIDES)."""
    anchors = inputs["boxes"].shape[-1]
    side = int(round((anchors / sum(1 / s**2 for s in STRIDES)) ** 0.5))
    return side


def criterion_call(make_criterion, nc=CLASSES):
    """fn(**inputs) -> the criterion's scaled loss vector, summed (ultralytics' trainer backpropagates
    its sum), with the criterion built once per device."""
    built = {}

    def call(**inputs):
        device = inputs["boxes"].device
        if device not in built:
            built[device] = make_criterion(StandInModel(nc=nc, device=device))
        loss, _ = built[device](*split(inputs, image_size(inputs)))
        return loss.sum()

    return call


def _reference(call):
    def reference(**inputs):
        with _backend.reference_only():
            return call(**inputs)

    return reference


def _register(name, criterion, make, grad, nc=CLASSES):
    fused = criterion_call(criterion, nc)
    register(
        Case(
            name=name,
            make_inputs=make,
            grad=grad,
            fastloss=fused,
            reference=_reference(fused),
            dtypes=(torch.float32,),
            bench_reference=False,
            default_run=False,
        )
    )


for gts in (10, 100, 1000):
    _register(
        f"v8DetectionLoss {BATCH}x8400x{CLASSES} {gts} GTs",
        face.v8DetectionLoss,
        criterion_inputs(gts),
        ("boxes", "scores"),
    )
for instances in (32, 100):
    _register(
        f"v8SegmentationLoss {BATCH}x8400x{CLASSES} {instances} inst",
        face.v8SegmentationLoss,
        criterion_inputs(instances, instances),
        ("boxes", "scores", "mask_coefficient", "proto"),
    )

for gts in (100, 1000):  # (YOLO-OBB on DOTA: batch 8, 1024² images, 15 classes)
    _register(
        f"v8OBBLoss 8x21504x15 {gts} GTs",
        face.v8OBBLoss,
        criterion_inputs(gts, images=8, imgsz=1024, classes=15, oriented=True),
        ("boxes", "scores", "angle"),
        nc=15,
    )


# ---- RT-DETR's criterion: 6 decoder layers and the encoder's output, 300 queries, denoising groups -----
LAYERS, QUERIES, DENOISING = 7, 300, 100  # (RT-DETR's loss takes the encoder's top-k as a 7th layer)


def denoising_meta(gt_groups, num_dn=DENOISING):
    """The dn_meta RT-DETR's get_cdn_group builds for these per-image target counts (no image over
    num_dn targets): each group's positive queries, the targets they reconstruct, the split."""
    max_nums = max(gt_groups)
    groups = num_dn // max_nums
    offsets = [sum(gt_groups[:i]) for i in range(len(gt_groups))]
    positions = [torch.cat([torch.arange(n) + 2 * max_nums * g for g in range(groups)]) for n in gt_groups]
    gt_idx = [torch.arange(n) + o for n, o in zip(gt_groups, offsets)]
    return {
        "dn_pos_idx": positions,
        "dn_gt_idx": gt_idx,
        "dn_num_group": groups,
        "dn_num_split": [2 * max_nums * groups, QUERIES],
    }


def rtdetr_inputs(gts):
    """The decoder's outputs (boxes in (0, 1), logits) of every layer for the matching and the denoising
    queries, and the flat targets, up to `gts` per image (each image its own count)."""

    def make(device, dtype, small):
        batch, queries, per_image = (2, 12, min(gts, 4)) if small else (BATCH, QUERIES, gts)
        g = torch.Generator().manual_seed(gts)
        groups = torch.randint(per_image // 2, per_image + 1, (batch,), generator=g).tolist()
        meta = denoising_meta(groups)
        dn = meta["dn_num_split"][0]
        n = sum(groups)
        head = dict(
            boxes=torch.rand(LAYERS, batch, queries, 4, generator=g) * 0.6 + 0.2,
            scores=torch.randn(LAYERS, batch, queries, CLASSES, generator=g) - 2,
            dn_boxes=torch.rand(LAYERS - 1, batch, dn, 4, generator=g) * 0.6 + 0.2,
            dn_scores=torch.randn(LAYERS - 1, batch, dn, CLASSES, generator=g) - 2,
        )
        targets = dict(
            cls=torch.randint(0, CLASSES, (n,), generator=g),
            bboxes=torch.cat([torch.rand(n, 2, generator=g) * 0.6 + 0.2, torch.rand(n, 2, generator=g) * 0.3], 1),
        )
        return {
            **{k: v.to(device=device, dtype=dtype).requires_grad_() for k, v in head.items()},
            **{k: v.to(device) for k, v in targets.items()},
            "gt_groups": groups,
            "dn_meta": meta,
        }

    return make


def rtdetr_call(make_criterion):
    """fn(**inputs) -> the sum of RT-DETR's losses (ultralytics' model sums them), the criterion built once."""
    built = []

    def call(boxes, scores, dn_boxes, dn_scores, cls, bboxes, gt_groups, dn_meta):
        if not built:
            built.append(make_criterion(nc=CLASSES, use_vfl=True))
        batch = {"cls": cls, "bboxes": bboxes, "gt_groups": gt_groups}
        return sum(built[0]((boxes, scores), batch, dn_boxes, dn_scores, dn_meta).values())

    return call


_rtdetr = rtdetr_call(face.RTDETRDetectionLoss)
register(
    Case(
        name=f"RTDETRDetectionLoss {BATCH}x{QUERIES}x{CLASSES} {LAYERS - 1}+1 layers",
        make_inputs=rtdetr_inputs(20),
        grad=("boxes", "scores", "dn_boxes", "dn_scores"),
        fastloss=_rtdetr,
        reference=_reference(_rtdetr),
        dtypes=(torch.float32,),
        bench_reference=False,
        default_run=False,
    )
)
