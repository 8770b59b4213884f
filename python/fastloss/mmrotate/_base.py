"""What mmrotate's GDLoss and KFLoss forward share: mmdet's reduction rules (fastloss.mmdet._base),
their all-zero-weight shortcut, and their per-box weights ((N, 5) weights averaged over the box)."""

from ..mmdet._base import MMDetLoss, resolve_reduction, weight_reduce, zero_weight_sum


class MMRotateLoss(MMDetLoss):
    def loss(self, pred, target, weight, **kwargs):
        """The weighted element losses (...)."""
        raise NotImplementedError

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None, **kwargs):
        reduction = resolve_reduction(self, reduction_override)
        box_weight = weight
        if weight is not None and weight.dim() > 1:
            if weight.shape != pred.shape:
                raise ValueError(f"weight must have pred's shape {tuple(pred.shape)}, got {tuple(weight.shape)}")
            box_weight = weight.mean(-1)
        count = pred.numel() // pred.shape[-1] if pred.dim() else 0

        def run(r):
            loss = self.loss(pred, target, box_weight, **kwargs)
            return loss if r == "none" else loss.sum()

        loss = self.scaled(weight_reduce(run, reduction, avg_factor, count))
        return zero_weight_sum(loss, pred, weight, reduction)
