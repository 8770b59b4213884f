"""MONAI's TverskyLoss (monai/losses/tversky.py) on fastloss.tversky_loss."""

from .. import overlap
from .._common import check_bool, check_nonnegative
from ._common import MonaiLoss


class TverskyLoss(MonaiLoss):
    """MONAI's TverskyLoss: 1 − (tp + smooth_nr) / (tp + α·fp + β·fn + smooth_dr); "none" gives (N, C)."""

    def __init__(
        self,
        include_background=True,
        to_onehot_y=False,
        sigmoid=False,
        softmax=False,
        other_act=None,
        alpha=0.5,
        beta=0.5,
        reduction="mean",
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=False,
        soft_label=False,
        ignore_index=None,
    ):
        super().__init__(include_background, to_onehot_y, sigmoid, softmax, other_act, reduction, batch)
        self.alpha, self.beta = check_nonnegative("alpha", alpha), check_nonnegative("beta", beta)
        self.smooth_nr, self.smooth_dr = (
            float(check_nonnegative("smooth_nr", smooth_nr)),
            float(check_nonnegative("smooth_dr", smooth_dr)),
        )
        self.soft_label = check_bool("soft_label", soft_label)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        input, target, options = self.prepare(input, target)
        return overlap.tversky_loss(
            input,
            target,
            alpha=self.alpha,
            beta=self.beta,
            smooth_nr=self.smooth_nr,
            smooth_dr=self.smooth_dr,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            soft_label=self.soft_label,
            **options,
        )


__all__ = ["TverskyLoss"]
