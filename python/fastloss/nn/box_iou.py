from .. import box_iou_loss as _functional
from ._base import WeightedLoss


class BoxIoULoss(WeightedLoss):
    """mmdet-style module of one loss of the IoU family; the subclasses below name it. mmdet's
    defaults: reduction "mean", eps 1e-6, boxes "xyxy"."""

    kind = None

    def __init__(self, eps=1e-6, reduction="mean", loss_weight=1.0, box_format="xyxy", **params):
        super().__init__(reduction, loss_weight)
        self.eps, self.box_format, self.params = eps, box_format, params

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None):
        """pred, target: (..., 4); weight per box (pred.shape[:-1]) or per coordinate (pred's shape)."""
        loss = _functional.FUNCTIONS[self.kind + "_loss"](
            pred,
            target,
            self.resolve_reduction(reduction_override),
            self.eps,
            weight=weight,
            avg_factor=avg_factor,
            box_format=self.box_format,
            **self.params,
        )
        return loss * self.loss_weight if self.loss_weight != 1.0 else loss

    def extra_repr(self):
        params = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"eps={self.eps}, box_format={self.box_format!r}{params}, " + super().extra_repr()


class IoULoss(BoxIoULoss):
    """mmdet's IoULoss: mode "log" (its default), "linear" or "square"."""

    kind = "iou"

    def __init__(self, mode="log", eps=1e-6, reduction="mean", loss_weight=1.0, box_format="xyxy"):
        super().__init__(eps, reduction, loss_weight, box_format, mode=mode)


class GIoULoss(BoxIoULoss):
    kind = "giou"


class DIoULoss(BoxIoULoss):
    kind = "diou"


class CIoULoss(BoxIoULoss):
    kind = "ciou"


class EIoULoss(BoxIoULoss):
    kind = "eiou"


class FocalEIoULoss(BoxIoULoss):
    kind = "focal_eiou"

    def __init__(self, gamma=0.5, eps=1e-6, reduction="mean", loss_weight=1.0, box_format="xyxy"):
        super().__init__(eps, reduction, loss_weight, box_format, gamma=gamma)


class CDIoULoss(BoxIoULoss):
    kind = "cdiou"

    def __init__(self, lambd=1.0, eps=1e-6, reduction="mean", loss_weight=1.0, box_format="xyxy"):
        super().__init__(eps, reduction, loss_weight, box_format, lambd=lambd)
