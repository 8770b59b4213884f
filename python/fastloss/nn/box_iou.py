from .. import box_iou_loss as _functional
from ._base import Loss, warn_deprecated


class BoxIoULoss(Loss):
    """A loss of the IoU family (fastloss.<kind>_loss) as a module; the subclasses below name it.

    forward(pred, target, weight=None, avg_factor=None): boxes (..., 4); weight per box
    (pred.shape[:-1]) or per coordinate (pred's shape).
    """

    function = None

    def __init__(self, eps=1e-7, reduction="mean", *, box_format="xyxy", **deprecated):
        super().__init__(reduction, **deprecated)
        self.eps, self.box_format = eps, box_format

    def options(self):
        """The kind's own options (mode, gamma, lambd)."""
        return {}

    def forward(self, pred, target, weight=None, avg_factor=None, **deprecated):
        loss = type(self).function(
            pred,
            target,
            self.resolve_reduction(deprecated),
            self.eps,
            weight=weight,
            avg_factor=avg_factor,
            box_format=self.box_format,
            **self.options(),
        )
        return self.scaled(loss)

    def extra_repr(self):
        options = "".join(f", {k}={v!r}" for k, v in self.options().items())
        return f"eps={self.eps}, box_format={self.box_format!r}{options}, " + super().extra_repr()


class IoULoss(BoxIoULoss):
    """fastloss.iou_loss: mode "linear" (1 − IoU), "log" or "square"."""

    function = _functional.iou_loss

    def __init__(self, eps=1e-7, reduction="mean", *, box_format="xyxy", mode=None, **deprecated):
        super().__init__(eps, reduction, box_format=box_format, **deprecated)
        if mode is None:
            warn_deprecated(
                "IoULoss() without mode, which meant mmdet's mode='log',",
                "the default is fastloss.iou_loss's mode='linear' from 0.3; pass mode= (mmdet's IoULoss is "
                "fastloss.mmdet.IoULoss)",
            )
            mode = "log"
        self.mode = mode

    def options(self):
        return {"mode": self.mode}


class GIoULoss(BoxIoULoss):
    """fastloss.giou_loss as a module."""

    function = _functional.giou_loss


class DIoULoss(BoxIoULoss):
    """fastloss.diou_loss as a module."""

    function = _functional.diou_loss


class CIoULoss(BoxIoULoss):
    """fastloss.ciou_loss as a module."""

    function = _functional.ciou_loss


class EIoULoss(BoxIoULoss):
    """fastloss.eiou_loss as a module."""

    function = _functional.eiou_loss


class FocalEIoULoss(BoxIoULoss):
    """fastloss.focal_eiou_loss as a module."""

    function = _functional.focal_eiou_loss

    def __init__(self, eps=1e-7, reduction="mean", *, box_format="xyxy", gamma=0.5, **deprecated):
        super().__init__(eps, reduction, box_format=box_format, **deprecated)
        self.gamma = gamma

    def options(self):
        return {"gamma": self.gamma}


class CDIoULoss(BoxIoULoss):
    """fastloss.cdiou_loss as a module."""

    function = _functional.cdiou_loss

    def __init__(self, eps=1e-7, reduction="mean", *, box_format="xyxy", lambd=1.0, **deprecated):
        super().__init__(eps, reduction, box_format=box_format, **deprecated)
        self.lambd = lambd

    def options(self):
        return {"lambd": self.lambd}
