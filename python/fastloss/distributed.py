"""Losses that stay right across processes (DDP): the small reductions a loss needs over the global batch.

A batch Dice / Tversky over several ranks needs the per-class sums of the whole batch, not each rank's:
`fastloss.dice_loss(..., batch=True, process_group=group)` all-reduces its (1, C, 3) sums before the
score (all_reduce_sum below). The all-reduce is differentiable and its backward all-reduces the
incoming gradient, so on every rank the loss is the global loss, and after DDP's gradient averaging
the parameters' gradients are those of one process on the concatenated batch (tested with 2 and 4
gloo processes). Everything stays a tensor: no value is read on the host, so CUDA graphs and NCCL
streams keep running.
"""

import torch
import torch.distributed as dist

from ._torchscript import refuse_functions


def _check_group(group):
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "process_group needs torch.distributed to be initialised (torch.distributed."
            "init_process_group) in this process"
        )
    return group


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        # Every rank's loss depends on every rank's sums: d(Σ_ranks loss_r)/d(local sums) is the sum
        # of the ranks' gradients with respect to the global sums.
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)
        return grad, None


def all_reduce_sum(tensor, group=None):
    """The sum of `tensor` over the ranks of `group` (default: the world), differentiable: its backward
    all-reduces the gradient. For sums a loss is computed from (a group of one returns a copy)."""
    _check_group(group)
    return _AllReduceSum.apply(tensor, group)


def reduce_mean(tensor, group=None):
    """mmdet's reduce_mean: the mean of `tensor` over the ranks (e.g. avg_factor = the number of positive
    anchors, averaged over the GPUs), as a tensor — no host sync. Without torch.distributed initialised
    the tensor itself is returned, as mmdet's."""
    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    out = tensor.clone()
    dist.all_reduce(out.div_(dist.get_world_size(group)), op=dist.ReduceOp.SUM, group=group)
    return out


def global_batch_sums(sums, group):
    """(N, C, k) per-sample sums → (1, C, k) sums of the global batch over `group`."""
    return all_reduce_sum(sums.sum(0, keepdim=True), group)


__all__ = ["all_reduce_sum", "reduce_mean", "global_batch_sums"]
refuse_functions(globals(), __all__, "fastloss.distributed")
