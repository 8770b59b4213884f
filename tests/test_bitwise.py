"""The CPU kernels give, bit for bit, the numbers they gave before the port to the LibTorch stable
ABI, on the test suite's own inputs (tests/bitwise.py: which cases, how they are digested, how the
digests were recorded), for the SIMD flavour that is loaded."""
import json
import os

import pytest

import bitwise
import fastloss

pytestmark = pytest.mark.skipif(fastloss._backend._CPU is None, reason="digests are of the compiled kernels")


def test_outputs_are_bitwise_those_recorded_before_the_port():
    with open(bitwise.path(bitwise.flavour())) as f:
        recorded = json.load(f)
    got = bitwise.compute()
    assert set(got) == set(recorded), "the case list changed: record the digests again (tests/bitwise.py)"
    changed = sorted(name for name in got if got[name] != recorded[name])
    assert not changed, f"{len(changed)} of {len(got)} cases differ from the recorded digests: {changed[:20]}"


def test_digests_exist_for_every_x86_flavour():
    assert all(os.path.exists(bitwise.path(f)) for f in ("avx2", "avx512"))
