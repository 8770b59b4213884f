"""Autocast behaviour of the fastloss ops, like torch's own losses (which are on autocast's float32
list): under `torch.autocast` an op computes in float32 and returns float32 — but it does not cast
its inputs (torch's cast would copy the logits): the kernels read half inputs as they are and run
their math in float32 anyway. Ops with a `math_type_loss` flag get it set, so an unreduced loss is
written in float32; the others already return float32 for half inputs.
"""

import torch

from ._autograd import _LIB

_DEVICE_TYPES = ("cpu", "cuda")


def register(name, math_type_loss=False):
    op = getattr(torch.ops.fastloss, name).default
    flag = next((i for i, a in enumerate(op._schema.arguments) if a.name == "math_type_loss"), None)
    if math_type_loss != (flag is not None):
        raise AssertionError(f"fastloss::{name}: math_type_loss={math_type_loss} does not fit its schema")
    defaults = [a.default_value if a.has_default_value() else None for a in op._schema.arguments]
    for device_type in _DEVICE_TYPES:
        key_name = "Autocast" + torch._C._dispatch_key_for_device(device_type)
        key = getattr(torch._C.DispatchKey, key_name)

        def autocast_impl(*args, _key=key):
            args = list(args) + defaults[len(args) :]
            if flag is not None:
                args[flag] = True
            with torch._C._ExcludeDispatchKeyGuard(torch._C.DispatchKeySet(_key)):
                return op(*args)

        if op.has_kernel_for_dispatch_key(key):
            op.py_kernels.pop(key, None)
        op.py_impl(key)(autocast_impl)  # what torch.compile's tracing sees
        _LIB.impl(name, lambda _keyset, *args, _impl=autocast_impl: _impl(*args), key_name, with_keyset=True)
