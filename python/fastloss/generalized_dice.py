"""fastloss.generalized_dice_loss: Generalized Dice (Sudre et al. 2017, arXiv 1707.03237) on the fused
overlap sums.

The kernel pass is fastloss::overlap_sums (one pass over the logits, the activation fused in; see
fastloss.overlap); the score is a few operations on the (N, C, 3) sums, here in torch, so its
gradient reaches the kernel's in-place backward through the sums.
"""

from . import overlap
from ._common import check_choice
from ._module import OptionsLoss, keyword_arguments
from ._spec import OpSpec, declare
from .reference import generalized_dice as _reference
from .reference.generalized_dice import W_TYPES, score_from_sums
from .reference.overlap import global_sums


def generalized_dice_loss(
    input,
    target,
    *,
    w_type="square",
    activation="softmax",
    include_background=True,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    batch=False,
    ignore_index=None,
    reduction="mean",
    soft_label=False,
    process_group=None,
):
    """Generalized Dice loss: per sample (or over the batch with batch=True),

        1 − (2·Σ_c w_c·tp_c + smooth_nr) / (Σ_c w_c·(Σp + Σt)_c + smooth_dr),  w_c from Σt (w_type)

    with MONAI's GeneralizedDiceLoss numbers. input, target, activation, include_background,
    ignore_index, soft_label: as fastloss.dice_loss. reduction: "mean" | "sum" over the samples, or
    "none": (N,) — (1,) with batch=True. process_group (batch=True): the sums, hence the class weights,
    are the global batch's across the ranks (fastloss.distributed).
    """
    check_choice("w_type", w_type, {w: w for w in W_TYPES})
    sums, a = overlap.sums(
        input,
        target,
        activation=activation,
        include_background=include_background,
        smooth_nr=smooth_nr,
        smooth_dr=smooth_dr,
        batch=batch,
        ignore_index=ignore_index,
        reduction=reduction,
        soft_label=soft_label,
        process_group=process_group,
    )
    return score_from_sums(global_sums(sums, a), a, w_type)


__all__ = ["generalized_dice_loss"]


# -------------------------------------------------------------------------------- the nn module


class GeneralizedDiceLoss(OptionsLoss):
    """fastloss.generalized_dice_loss as a module: forward(input, target); the class weights come
    from the target (w_type)."""

    function = generalized_dice_loss

    def __init__(
        self,
        *,
        w_type="square",
        activation="softmax",
        include_background=True,
        smooth_nr=1e-5,
        smooth_dr=1e-5,
        batch=False,
        ignore_index=None,
        reduction="mean",
        soft_label=False,
        process_group=None,
    ):
        super().__init__(**keyword_arguments(locals()))


# ------------------------------------------------------------------------------------ the record
# (the overlap family's ops and plan; its own function, reference and module)

SPEC = declare(OpSpec("generalized_dice", ops=(), reference=_reference, modules=(GeneralizedDiceLoss,)))
