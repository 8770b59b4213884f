"""mmrotate's GDLoss (mmrotate/models/losses/gaussian_dist_loss.py) on
fastloss.gaussian_distance_loss (the fused kernel)."""

from .. import gaussian_distance
from .._common import check_choice, check_number
from ._base import MMRotateLoss

# the keyword each loss type takes beyond fun, tau and alpha (mmrotate's **kwargs)
_OPTION = {"gwd": "normalize", "kld": "sqrt", "jd": "sqrt", "kld_symmax": "sqrt", "kld_symmin": "sqrt"}


class GDLoss(MMRotateLoss):
    """mmrotate's GDLoss: loss_type "gwd", "kld", "jd", "kld_symmax" or "kld_symmin" between oriented
    boxes (N, 5) in representation "xy_wh_r" (radians) or "xy_stddev_pearson"; fun "log1p", "sqrt"
    or "none"; 1 − 1/(tau + d) when tau ≥ 1 (mmrotate's default tau 0.0 leaves d); alpha weighs the
    centres' term. Extra keywords (constructor or forward): normalize for "gwd", sqrt for the KLDs.
    Degenerate boxes give a finite loss and gradient (mmrotate's: NaN; see fastloss.gaussian_distance)."""

    def __init__(
        self,
        loss_type,
        representation="xy_wh_r",
        fun="log1p",
        tau=0.0,
        alpha=1.0,
        reduction="mean",
        loss_weight=1.0,
        **kwargs,
    ):
        super().__init__(reduction, loss_weight)
        check_choice("loss_type", loss_type, _OPTION)
        check_choice("representation", representation, {"xy_wh_r": 0, "xy_stddev_pearson": 1})
        check_choice("fun", fun, {"log1p": 0, "none": 1, "sqrt": 2})
        self.loss_type, self.representation, self.fun = loss_type, representation, fun
        self.tau, self.alpha = check_number("tau", tau), check_number("alpha", alpha)
        self.kwargs = self._options(kwargs)

    def _options(self, kwargs):
        option = _OPTION[self.loss_type]
        unknown = set(kwargs) - {option}
        if unknown:
            raise TypeError(f"GDLoss({self.loss_type!r}) got unexpected keyword arguments {sorted(unknown)}")
        return dict(kwargs)

    def loss(self, pred, target, weight, **kwargs):
        options = {**self.kwargs, **self._options(kwargs)}
        return gaussian_distance.gaussian_distance_loss(
            pred,
            target,
            self.loss_type,
            self.fun,
            self.tau,
            self.alpha,
            representation=self.representation,
            weight=weight,
            **options,
        )

    def extra_repr(self):
        return (
            f"loss_type={self.loss_type!r}, representation={self.representation!r}, fun={self.fun!r}, "
            f"tau={self.tau}, alpha={self.alpha}, " + super().extra_repr()
        )


__all__ = ["GDLoss"]
