import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/helpers.py

from helpers import peer

if peer("hypothesis") is not None:
    from hypothesis import settings

    settings.register_profile(
        "fastloss", deadline=None, derandomize=True, max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "60"))
    )
    settings.load_profile("fastloss")


def pytest_configure(config):
    config.addinivalue_line("markers", "emulation: runs the CUDA sources in the CPU emulation (make cuda-emulate)")
    if not hasattr(config, "workerinput"):
        _warm_first_import_caches()


def _warm_first_import_caches():
    """Imports, once in the controller before the pytest-xdist workers start, the peer modules that
    write a per-user cache on their first import: yapf (under mmengine) pickles its grammar into
    ~/.cache/YAPF, and on a fresh machine two workers importing it at once read each other's
    half-written pickle (EOFError: Ran out of input, a collection error)."""
    try:
        import yapf  # noqa: F401
    except ImportError:
        pass


def pytest_collection_modifyitems(config, items):
    """The emulated-CUDA tests run only where the emulation is built (`make cuda-emulate` sets
    FASTLOSS_CUDA_EMULATION); elsewhere they are deselected, not skipped."""
    from cuda_emulation import emulation

    if emulation.enabled():
        return
    selected = [item for item in items if item.get_closest_marker("emulation") is None]
    if len(selected) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("emulation")])
        items[:] = selected


def pytest_sessionfinish(session, exitstatus):
    """FASTLOSS_EMU_COVERAGE=1 (make cuda-emulate's full run): every __global__ template instance of the
    emulation library must have been launched; prints `kernels launched: N of M`. Under pytest-xdist
    each worker hands its counts to the controller (pytest_testnodedown), which adds them up."""
    from cuda_emulation import emulation

    if not (emulation.enabled() and os.environ.get("FASTLOSS_EMU_COVERAGE") == "1"):
        return
    launches = emulation.launches()
    if hasattr(session.config, "workeroutput"):  # an xdist worker
        session.config.workeroutput["emulation_launches"] = launches
        return
    for worker in getattr(session.config, "emulation_worker_launches", []):
        for name, count in worker.items():
            launches[name] = launches.get(name, 0) + count
    missed = sorted(name for name, count in launches.items() if count == 0)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter else print
    write(f"kernels launched: {len(launches) - len(missed)} of {len(launches)}")
    for name in missed:
        write(f"  never launched: {name}")
    if missed and session.exitstatus == 0:
        session.exitstatus = 1


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """(pytest-xdist, in the controller) a worker's emulated-kernel launch counts, for the total above."""
    launches = getattr(node, "workeroutput", {}).get("emulation_launches")
    if launches is not None:
        if not hasattr(node.config, "emulation_worker_launches"):
            node.config.emulation_worker_launches = []
        node.config.emulation_worker_launches.append(launches)


def pytest_report_header(config):
    import fastloss

    info = fastloss._backend.info()
    return f"fastloss kernels: {info['backend']}, CPU {info['cpu_capability']}, CUDA compiled: {info['cuda_compiled']}"


@pytest.fixture(autouse=True)
def _seed():
    import torch

    torch.manual_seed(0)
