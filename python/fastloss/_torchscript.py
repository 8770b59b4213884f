"""TorchScript: not supported, and said so plainly.

fastloss's functions check their arguments in Python and register autograd from Python, neither of
which TorchScript can compile, and TorchScript itself is deprecated in PyTorch 2. The supported ways
to compile a model that uses fastloss are torch.compile (fullgraph=True works, dynamic shapes too)
and torch.export. torch.jit.script(obj) calls obj.__prepare_scriptable__() first (functions and
modules alike): there every fastloss function and module raises this error, instead of TorchScript's
own message about keyword-only arguments.
"""

import types

MESSAGE = (
    "{name} cannot be compiled with torch.jit.script: fastloss checks its arguments and registers "
    "its gradients in Python, which TorchScript (deprecated in PyTorch 2) cannot compile. Use "
    "torch.compile (fullgraph=True works) or torch.export instead, or call it eagerly."
)


def refusal(name):
    def __prepare_scriptable__():
        raise RuntimeError(MESSAGE.format(name=name))

    return __prepare_scriptable__


def refuse_functions(namespace, names, prefix):
    """Marks the functions among namespace[names] as not scriptable."""
    for name in names:
        f = namespace.get(name)
        if isinstance(f, types.FunctionType):
            f.__prepare_scriptable__ = refusal(f"{prefix}.{name}")


class NotScriptable:
    """Mixin of every fastloss module: torch.jit.script raises MESSAGE."""

    def __prepare_scriptable__(self):
        raise RuntimeError(MESSAGE.format(name=f"{type(self).__module__}.{type(self).__qualname__}"))
