"""ultralytics' RT-DETR matcher and criterion for fastloss.ultralytics: HungarianMatcher, DETRLoss and
RTDETRDetectionLoss with ultralytics 8.4.190's constructors, calls and numbers.

Where ultralytics matches and scores each decoder layer in turn — its cost copied to the host and
solved by scipy image by image, a (B, Q, C + 1) int64 one-hot per layer, Python lists of index
tensors — this matches every layer in one fastloss.linear_sum_assignment call on the device and
scores them together: the matched pairs as flat (layers, pairs) query and target indices, the class
term from label indices (fastloss.varifocal_loss / sigmoid_focal_loss, one value per layer, no
one-hot), L1 and GIoU on the matched pairs only. The normalisers are the pair counts, which the
targets' per-image counts (`gt_groups`, a list) give on the host: no .item(), no host sync.
"""

import torch
import torch.nn.functional as F

from ._torchscript import NotScriptable
from .box_iou_loss import _fused as box_loss
from .hungarian_matcher import matched_pairs, pad_groups
from .quality_focal import varifocal_loss
from .reference.rtdetr_matching_cost import xywh_iou
from .rtdetr_matching_cost import rtdetr_matching_cost
from .sigmoid_focal import sigmoid_focal_loss


def _box_loss(kind, box1, box2):
    """1 − ultralytics' bbox_iou(box1, box2, xywh=True, ...) of that kind, broadcast, without the last axis."""
    b1, b2 = torch.broadcast_tensors(box1, box2)
    return box_loss(kind, b1, b2, "none", 1e-7, None, None, "cxcywh", convention="ultralytics")


def class_cost(pred_scores, labels, use_fl, alpha, gamma):
    """ultralytics' matcher class cost of (B, Q, C) scores at the targets' labels (B, T): (B, Q, T)."""
    scores = pred_scores.detach().float()  # (no saturated half probabilities)
    scores = scores.sigmoid() if use_fl else F.softmax(scores, dim=-1)
    scores = scores.gather(-1, labels.unsqueeze(-2).expand(*scores.shape[:-1], labels.shape[-1]))
    if not use_fl:
        return -scores
    positive = alpha * ((1 - scores) ** gamma) * (-(scores + 1e-8).log())
    negative = (1 - alpha) * (scores**gamma) * (-(1 - scores + 1e-8).log())
    return positive - negative


def matching_cost(pred_bboxes, pred_scores, boxes, labels, cost_gain, use_fl, alpha, gamma):
    """ultralytics' matcher cost, float32, of (..., B, Q, ·) predictions against targets padded per
    image, boxes (B, T, 4) and labels (B, T): (..., B, Q, T), NaN and inf set to 0.

    The class cost layer by layer, each as ultralytics' matcher computes it on that layer: torch's
    sigmoid, log and pow round an element by its place in the vectorised loop (a tail element takes
    the scalar path), so only the same shapes give ultralytics' bits, which break the matcher's
    near-ties. The rest (L1, GIoU, gains, NaN/inf) for every layer in one fastloss.rtdetr_matching_cost
    call: exact IEEE steps in ultralytics' order, so its bits too."""
    lead = pred_scores.shape[:-3]
    scores = pred_scores.reshape(-1, *pred_scores.shape[-3:])
    classes = torch.stack([class_cost(s, labels, use_fl, alpha, gamma) for s in scores])
    # (rtdetr_matching_cost detaches the boxes and takes them in the class cost's float32)
    cost = rtdetr_matching_cost(
        classes,
        pred_bboxes.reshape(-1, *pred_bboxes.shape[-3:]),
        boxes,
        cost_gain["class"],
        cost_gain["bbox"],
        cost_gain["giou"],
    )
    return cost.view(*lead, *cost.shape[-3:])


def _offsets(gt_groups):
    """Where each image's targets start in the concatenated targets."""
    offsets = [0]
    for n in gt_groups[:-1]:
        offsets.append(offsets[-1] + n)
    return offsets


class HungarianMatcher(NotScriptable, torch.nn.Module):
    """ultralytics.models.utils.ops.HungarianMatcher (RT-DETR's matcher): the same constructor and
    defaults, forward and results. Its cost — cost_gain["class"] · (focal with alpha, gamma, or
    −softmax) + cost_gain["bbox"] · L1 + cost_gain["giou"] · (1 − GIoU), NaN and inf set to 0, in
    float32 — is computed as ultralytics computes it, on the predictions' device; the assignment is
    fastloss.linear_sum_assignment over every image in one call (scipy's pairs), with no copy to the
    host. Target indices are offset into the concatenated gt_bboxes, as ultralytics' are; the index
    tensors are on the predictions' device (ultralytics': on the CPU)."""

    def __init__(self, cost_gain=None, use_fl=True, alpha=0.25, gamma=2.0):
        super().__init__()
        self.cost_gain = cost_gain if cost_gain is not None else {"class": 1, "bbox": 5, "giou": 2}
        self.use_fl, self.alpha, self.gamma = use_fl, alpha, gamma

    def cost(self, pred_bboxes, pred_scores, boxes, labels):
        return matching_cost(
            pred_bboxes, pred_scores, boxes, labels, self.cost_gain, self.use_fl, self.alpha, self.gamma
        )

    @torch.no_grad()
    def forward(self, pred_bboxes, pred_scores, gt_bboxes, gt_cls, gt_groups):
        if sum(gt_groups) == 0:
            empty = torch.zeros(0, dtype=torch.long, device=pred_scores.device)
            return [(empty, empty.clone()) for _ in range(pred_scores.shape[0])]
        boxes, mask = pad_groups(gt_bboxes, gt_groups)
        labels, _ = pad_groups(gt_cls, gt_groups)
        return matched_pairs(self.cost(pred_bboxes, pred_scores, boxes, labels), mask, gt_groups, _offsets(gt_groups))


class DETRLoss(NotScriptable, torch.nn.Module):
    """ultralytics.models.utils.loss.DETRLoss: the same constructor and defaults, forward and losses
    (loss_class, loss_bbox, loss_giou of the last decoder layer; their _aux sums over the others),
    every layer matched and scored at once (see the module's docstring). `matcher` is
    fastloss.ultralytics.HungarianMatcher; another matcher put there is called layer by layer, as
    ultralytics calls it."""

    def __init__(
        self,
        nc=80,
        loss_gain=None,
        aux_loss=True,
        use_fl=True,
        use_vfl=False,
        use_uni_match=False,
        uni_match_ind=0,
        gamma=1.5,
        alpha=0.25,
    ):
        super().__init__()
        self.nc = nc
        self.loss_gain = loss_gain if loss_gain is not None else {"class": 1, "bbox": 5, "giou": 2}
        self.matcher = HungarianMatcher(cost_gain={"class": 2, "bbox": 5, "giou": 2})
        self.aux_loss, self.use_fl, self.use_vfl = aux_loss, use_fl, use_vfl
        self.use_uni_match, self.uni_match_ind = use_uni_match, uni_match_ind
        self.gamma, self.alpha = gamma, alpha
        self.device = None

    def forward(self, pred_bboxes, pred_scores, batch, postfix="", match_indices=None):
        self.device = pred_bboxes.device
        gt_cls, gt_bboxes, gt_groups = batch["cls"], batch["bboxes"], batch["gt_groups"]
        if not self.aux_loss:
            pred_bboxes, pred_scores = pred_bboxes[-1:], pred_scores[-1:]
        if match_indices is not None:
            query, target = self._given_pairs(match_indices, pred_scores)
        else:
            query, target = self._matched_pairs(pred_bboxes, pred_scores, gt_bboxes, gt_cls, gt_groups)
        cls, l1, giou = self._layer_losses(pred_bboxes, pred_scores, gt_bboxes, gt_cls, query, target)
        losses = {f"loss_class{postfix}": cls[-1], f"loss_bbox{postfix}": l1[-1], f"loss_giou{postfix}": giou[-1]}
        if self.aux_loss:
            losses[f"loss_class_aux{postfix}"] = cls[:-1].sum()
            losses[f"loss_bbox_aux{postfix}"] = l1[:-1].sum()
            losses[f"loss_giou_aux{postfix}"] = giou[:-1].sum()
        return losses

    def _flat(self, pairs, queries):
        """Per-image (query, target) index pairs, (..., n_i) each, as flat (..., Σ n_i) indices into the
        (B·Q) queries and the concatenated targets."""
        query = torch.cat([q + i * queries for i, (q, _) in enumerate(pairs)], -1)
        return query, torch.cat([t for _, t in pairs], -1)

    def _given_pairs(self, match_indices, pred_scores):
        layers, _, queries = pred_scores.shape[:3]
        query, target = self._flat(match_indices, queries)  # (on the indices' device: one copy each)
        return query.to(self.device).expand(layers, -1), target.to(self.device).expand(layers, -1)

    def _matched_pairs(self, pred_bboxes, pred_scores, gt_bboxes, gt_cls, gt_groups):
        layers, _, queries = pred_scores.shape[:3]
        # the layers whose own match is used: the last (the main loss) and the auxiliary ones, or the
        # one the auxiliary layers share (use_uni_match)
        if layers > 1 and self.use_uni_match:
            solved, of_layer = [list(range(layers - 1))[self.uni_match_ind], layers - 1], [0] * (layers - 1) + [1]
        else:
            solved, of_layer = list(range(layers)), list(range(layers))
        if sum(gt_groups) == 0:
            empty = torch.zeros(layers, 0, dtype=torch.long, device=self.device)
            return empty, empty.clone()
        if isinstance(self.matcher, HungarianMatcher):
            with torch.no_grad():
                boxes, mask = pad_groups(gt_bboxes, gt_groups)
                labels, _ = pad_groups(gt_cls, gt_groups)
                if solved != list(range(layers)):  # (else the layers as they are: no copy)
                    pred_bboxes, pred_scores = pred_bboxes[solved], pred_scores[solved]
                cost = self.matcher.cost(pred_bboxes, pred_scores, boxes, labels)
                query, target = self._flat(matched_pairs(cost, mask, gt_groups, _offsets(gt_groups)), queries)
        else:  # another matcher: layer by layer, as ultralytics calls it
            flat = [
                self._flat(self.matcher(pred_bboxes[k], pred_scores[k], gt_bboxes, gt_cls, gt_groups), queries)
                for k in solved
            ]
            query, target = torch.stack([q.to(self.device) for q, _ in flat]), torch.stack([t for _, t in flat])
        return query[of_layer], target[of_layer].to(self.device)

    def _layer_losses(self, pred_bboxes, pred_scores, gt_bboxes, gt_cls, query, target):
        """Each layer's class, L1 and GIoU losses (gains applied), (layers,) each."""
        layers, batch, queries, classes = pred_scores.shape
        pairs = query.shape[-1]
        pred = pred_bboxes.reshape(layers, batch * queries, 4).gather(1, query.unsqueeze(-1).expand(-1, -1, 4))
        gt = gt_bboxes[target]  # (layers, pairs, 4)
        with torch.no_grad():
            iou = xywh_iou(pred.detach(), gt)
        labels = torch.full((layers, batch * queries), self.nc, dtype=torch.long, device=self.device)
        labels = labels.scatter(1, query, gt_cls[target].long()).view(layers, batch, queries)
        scores = torch.zeros(layers, batch * queries, device=self.device)
        scores = scores.scatter(1, query, iou.float()).view(layers, batch, queries)
        norm = max(pairs, 1)
        if self.use_fl and pairs and self.use_vfl:
            cls = varifocal_loss(
                pred_scores,
                (labels, scores),
                alpha=self.alpha,
                gamma=self.gamma,
                negative_mask="label",
                reduction="mean",
                avg_factor=norm,
                per_layer=True,
            )
        elif self.use_fl:
            cls = sigmoid_focal_loss(
                pred_scores, labels, self.alpha, self.gamma, "mean", avg_factor=norm, ignore_index=None, per_layer=True
            )
        else:  # BCE against one_hot · IoU, summed over the classes and images, averaged over the queries
            cls = sigmoid_focal_loss(pred_scores, (labels, scores), -1, 0.0, "sum", per_layer=True) / queries
        cls = cls.float() * self.loss_gain["class"]
        if pairs == 0:  # (ultralytics' zero that keeps the boxes in the graph)
            zero = pred_bboxes[..., :0].sum((1, 2, 3))
            return cls, zero, zero.clone()
        l1 = self.loss_gain["bbox"] * (pred - gt).abs().sum((1, 2)) / pairs
        giou = self.loss_gain["giou"] * (_box_loss("giou", pred, gt).sum(-1) / pairs)
        return cls, l1, giou


class RTDETRDetectionLoss(DETRLoss):
    """ultralytics.models.utils.loss.RTDETRDetectionLoss: DETRLoss plus the denoising queries' losses
    (the _dn keys; zeros without dn_meta), with the same forward."""

    def forward(self, preds, batch, dn_bboxes=None, dn_scores=None, dn_meta=None):
        pred_bboxes, pred_scores = preds
        losses = super().forward(pred_bboxes, pred_scores, batch)
        if dn_meta is None:
            losses.update({f"{k}_dn": torch.zeros((), device=self.device) for k in list(losses)})
            return losses
        dn_pos_idx, groups = dn_meta["dn_pos_idx"], dn_meta["dn_num_group"]
        if len(batch["gt_groups"]) != len(dn_pos_idx):
            raise ValueError(
                f"dn_meta['dn_pos_idx'] must hold one tensor per image: {len(batch['gt_groups'])} images, "
                f"got {len(dn_pos_idx)}"
            )
        match_indices = []
        for positions, gt_idx in zip(dn_pos_idx, dn_meta["dn_gt_idx"]):
            gt_idx = gt_idx.repeat(groups)
            if len(positions) != len(gt_idx):
                raise ValueError(
                    f"dn_meta: {len(positions)} denoising queries for {len(gt_idx)} reconstructed targets in an image"
                )
            match_indices.append((positions, gt_idx))
        losses.update(super().forward(dn_bboxes, dn_scores, batch, postfix="_dn", match_indices=match_indices))
        return losses
