import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/helpers.py

from helpers import peer  # noqa: E402

if peer("hypothesis") is not None:
    from hypothesis import settings

    settings.register_profile("fastloss", deadline=None, derandomize=True,
                              max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "60")))
    settings.load_profile("fastloss")


def pytest_report_header(config):
    import fastloss

    info = fastloss._backend.info()
    return f"fastloss kernels: {info['backend']}, CPU {info['cpu_capability']}, CUDA compiled: {info['cuda_compiled']}"


@pytest.fixture(autouse=True)
def _seed():
    import torch

    torch.manual_seed(0)
