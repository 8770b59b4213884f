"""torch.vmap batching rules for the fastloss ops (registered with torch.library.register_vmap by each
op's module), and the helpers they share.

A rule folds vmap's batch dimension into the op's own leading (row / sample) dimension, so a vmapped
loss is one kernel call, not one call per sample (torch's fallback). A reduced loss is computed
unreduced and then summed per sample. Options that differ per sample (a batched class-weight
tensor) fall back to one call per sample.
"""

import torch

from ._common import MEAN, opmath_dtype


def front(t, dim, batch):
    """`t` with vmap's batch dimension first (expanded from an unbatched tensor when needed)."""
    if t is None:
        return None
    if dim is None:
        return t.unsqueeze(0).expand(batch, *t.shape)
    return t.movedim(dim, 0)


def aligned(t, dim, batch, rank):
    """A batched operand that broadcasts against a per-sample tensor of `rank` dimensions, with the
    batch dimension first and singleton dimensions between it and its own (right-aligned) shape;
    an unbatched operand is returned as it is (it already broadcasts)."""
    if t is None or dim is None:
        return t
    t = t.movedim(dim, 0)
    return t.reshape(t.shape[0], *([1] * (rank - (t.dim() - 1))), *t.shape[1:])


def reduce_per_sample(loss, reduction, count=None):
    """Per-sample "sum" or "mean" of an unreduced (batch, ...) loss, in the math type. `count` is the
    per-sample divisor of "mean" (default: the elements per sample, at least 1)."""
    flat = loss.to(opmath_dtype(loss.dtype)).reshape(loss.shape[0], -1)
    total = flat.sum(1)
    if reduction != MEAN:
        return total
    if count is None:
        return total / max(flat.shape[1], 1)
    return total / count.clamp(min=1).to(total.dtype)


def per_sample(op, batch, in_dims, args):
    """One op call per sample, outputs stacked on dimension 0 (the fallback for per-sample options)."""
    results = []
    for b in range(batch):
        results.append(op(*(a.select(d, b) if d is not None else a for a, d in zip(args, in_dims))))
    if isinstance(results[0], tuple):
        return tuple(torch.stack(r) for r in zip(*results)), (0,) * len(results[0])
    return torch.stack(results), 0


def register(name, rule):
    torch.library.register_vmap(f"fastloss::{name}", rule)
