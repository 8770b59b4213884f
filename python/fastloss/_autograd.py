"""Autograd for every fastloss op: the kernels' backward, a differentiable backward for higher-order
gradients, and torch.func support — one registration per op (`register`).

An op's Autograd kernel has three paths:
  * first-order backward (the common case): the op's hand-written backward, which calls the
    backward kernel;
  * a backward that must itself be differentiable (`create_graph=True`, a gradient penalty,
    `torch.autograd.gradgradcheck`): the gradient is computed from the op's pure-torch definition
    (`reference`, in fastloss.reference) with autograd, so it carries a graph and every higher
    derivative is torch's own. The kernels' first derivatives equal the reference's (tested), so
    the numbers stay the same; it is slower, never wrong;
  * under a torch.func transform that differentiates (grad, vjp, jvp, jacrev, jacfwd, hessian,
    also inside vmap): the op runs as its reference, which functorch transforms natively. Under
    vmap alone the kernels run through the op's batching rule (fastloss._vmap).
"""

import dataclasses
from typing import Callable, Optional, Sequence, Tuple

import torch
from torch._C import _functorch

_LIB = torch.library.Library("fastloss", "IMPL")  # noqa: TOR901 (kept alive for the module's lifetime)


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str  # the op's name in the fastloss namespace
    # backward(ctx, args, saved_outputs, grads, needs) -> one gradient (or None) per argument of the
    # op; args are the op's arguments with the tensors as saved, grads may be None (not
    # materialised), needs[i] says whether argument i needs a gradient.
    backward: Callable
    # reference(*args) -> the op's outputs, in torch ops (same shapes and dtypes as the kernels)
    reference: Callable
    save_outputs: Tuple[int, ...] = ()  # outputs the backward needs
    non_differentiable: Tuple[int, ...] = ()  # outputs that never carry a gradient
    # setup(ctx, args, outputs): extra state for the backward (not tensors of the inputs' size)
    setup: Optional[Callable] = None


def _outputs(result):
    return result if isinstance(result, tuple) else (result,)


def _requires_grad(args):
    return any(isinstance(a, torch.Tensor) and a.requires_grad for a in args)


def differentiates_under_functorch(args) -> bool:
    """True when a torch.func transform that takes derivatives is active (or vmap over inputs that
    also require grad): the op must then run as its reference. vmap alone keeps the kernels."""
    if not torch._C._are_functorch_transforms_active():
        return False
    from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters

    if any(i.key() != _functorch.TransformType.Vmap for i in retrieve_all_functorch_interpreters()):
        return True
    return torch.is_grad_enabled() and _requires_grad(args)


def differentiable_vjp(reference, args: Sequence, needs: Sequence[bool], grads: Sequence) -> tuple:
    """The vector-Jacobian product of `reference` at `args`, with a graph (create_graph=True)."""
    with torch.enable_grad():
        outs = _outputs(reference(*args))
    pairs = [(o, g) for o, g in zip(outs, grads) if g is not None and o.requires_grad]
    wanted = [a for a, n in zip(args, needs) if n]
    if not pairs or not wanted:
        return tuple(torch.zeros_like(a) if n else None for a, n in zip(args, needs))
    got = iter(
        torch.autograd.grad(
            [o for o, _ in pairs], wanted, [g.to(o.dtype) for o, g in pairs], create_graph=True, allow_unused=True
        )
    )
    result = []
    for a, n in zip(args, needs):
        if not n:
            result.append(None)
            continue
        g = next(got)
        result.append(torch.zeros_like(a) if g is None else g)
    return tuple(result)


def register(spec: Spec):
    op = getattr(torch.ops.fastloss, spec.name).default
    tensor_positions = [i for i, a in enumerate(op._schema.arguments) if str(a.type) in ("Tensor", "Tensor?")]

    class Function(torch.autograd.Function):
        @staticmethod
        def forward(ctx, keyset, *args):
            with torch._C._AutoDispatchBelowAutograd():
                result = op.redispatch(keyset & torch._C._after_autograd_keyset, *args)
            outs = _outputs(result)
            ctx.set_materialize_grads(False)  # no zero "gradients" of the size of unused outputs
            if spec.non_differentiable:
                ctx.mark_non_differentiable(*(outs[i] for i in spec.non_differentiable))
            tensors = [args[i] for i in tensor_positions]
            ctx.save_for_backward(*(t for t in tensors if t is not None), *(outs[i] for i in spec.save_outputs))
            ctx.present = [t is not None for t in tensors]
            ctx.args = [None if i in tensor_positions else a for i, a in enumerate(args)]
            if spec.setup is not None:
                spec.setup(ctx, args, outs)
            return result

        @staticmethod
        def backward(ctx, *grads):
            saved = iter(ctx.saved_tensors)
            args = list(ctx.args)
            for i, present in zip(tensor_positions, ctx.present):
                args[i] = next(saved) if present else None
            saved_outputs = tuple(saved)
            needs = ctx.needs_input_grad[1:]
            if all(g is None for g in grads):
                return (None,) * (1 + len(args))
            if torch.is_grad_enabled():  # create_graph=True: the gradient must be differentiable
                return (None,) + differentiable_vjp(spec.reference, args, needs, grads)
            return (None,) + tuple(spec.backward(ctx, args, saved_outputs, grads, needs))

    defaults = [a.default_value if a.has_default_value() else None for a in op._schema.arguments]

    def autograd_kernel(keyset, *args):
        # the dispatcher drops trailing arguments equal to their defaults: put them back
        args = args + tuple(defaults[len(args) :])
        if differentiates_under_functorch(args):
            return spec.reference(*args)
        if torch.is_grad_enabled() and _requires_grad(args):
            return Function.apply(keyset, *args)
        with torch._C._AutoDispatchBelowAutograd():
            return op.redispatch(keyset & torch._C._after_autograd_keyset, *args)

    _LIB.impl(spec.name, autograd_kernel, "Autograd", with_keyset=True)
    return Function


def refuse_grad(needs, names_positions, what):
    """A clear error when a gradient is asked for that the kernels do not provide."""
    for name, i in names_positions:
        if needs[i]:
            raise RuntimeError(f"fastloss.{what}: gradients with respect to {name} are not supported")
