"""The public API's shape: every public function is a plain `def` with its docstring in its public
module (help(), IDEs and type checkers see it), fastloss and fastloss.reference share each signature,
and the reference is a leaf that imports nothing from the kernel side."""

import ast
import importlib
import inspect
import pathlib
import types

import pytest

import fastloss
import fastloss.reference

PACKAGE = pathlib.Path(fastloss.__file__).parent
FACES = ["fastloss", "fastloss.reference", "fastloss.mmdet", "fastloss.monai", "fastloss.ultralytics"]
FACES += ["fastloss.nnunet"]


def public_functions(module_name):
    module = importlib.import_module(module_name)
    for name in module.__all__:
        obj = getattr(module, name)
        if isinstance(obj, types.FunctionType):
            yield name, obj


@pytest.mark.parametrize("module_name", FACES)
def test_public_functions_are_plain_defs_with_docstrings(module_name):
    for name, f in public_functions(module_name):
        assert f.__name__ == name
        # a closure made by a factory has a qualname like "define.<locals>.giou_loss"
        assert f.__qualname__ == name, f"{module_name}.{name} is made by {f.__qualname__}, not a def"
        defined_in = importlib.import_module(f.__module__)
        assert defined_in.__name__.startswith("fastloss") and getattr(defined_in, name) is f
        assert inspect.getdoc(f), f"{module_name}.{name} has no docstring"
        # the def is in the module's source text, not generated
        assert f"def {name}(" in inspect.getsource(defined_in), f"{f.__module__} has no `def {name}(`"


@pytest.mark.parametrize("name", fastloss.reference.__all__)
def test_reference_has_the_kernels_signature(name):
    fused, reference = getattr(fastloss, name), getattr(fastloss.reference, name)
    assert fused is not reference
    assert inspect.signature(fused) == inspect.signature(reference)


def relative_imports(path):
    """The package-level modules a file imports with `from ..X import` / `from .. import X`."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level >= 2:
            if node.module:
                yield node.module.split(".")[0]
            else:
                yield from (alias.name for alias in node.names)


def test_reference_is_a_leaf():
    # shared argument checks, TorchScript's refusal and torch.distributed's all-reduce: no kernels
    allowed = {"_common", "_torchscript", "distributed"}
    for path in sorted((PACKAGE / "reference").glob("*.py")):
        imported = set(relative_imports(path))
        assert imported <= allowed, f"{path.name} imports {sorted(imported - allowed)} from the kernel side"
    assert not {"_backend", "_autograd"} & set(relative_imports(PACKAGE / "distributed.py"))


def test_every_nn_module_is_in_its_op_record():
    """fastloss.nn exports the modules the op records declare (fastloss._spec), each defined beside its
    function in the record's own module."""
    from fastloss import _spec

    declared = {}
    for spec in _spec.specs():
        for module in spec.modules:
            declared[module.__name__] = module
            assert importlib.import_module(module.__module__).SPEC is spec, (module, spec.name)
    assert set(fastloss.nn.__all__) - {"Loss", "OptionsLoss"} == set(declared)
    assert all(getattr(fastloss.nn, name) is module for name, module in declared.items())
