"""The CPU kernels give, bit for bit, the numbers recorded for the SIMD flavour that is loaded, and
differ from the kernels before the stable-ABI port only in the recorded cases (tests/bitwise.py:
which cases, how they are digested and recorded, why a few differ from the pre-port build)."""
import json
import os

import pytest

import bitwise
import fastloss

pytestmark = pytest.mark.skipif(fastloss._backend._CPU is None, reason="digests are of the compiled kernels")


def load(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def digests():
    return bitwise.compute()


def test_outputs_are_bitwise_those_recorded(digests):
    recorded = load(bitwise.path(bitwise.flavour()))
    assert set(digests) == set(recorded), "the case list changed: record the digests again (tests/bitwise.py)"
    changed = sorted(name for name in digests if digests[name] != recorded[name])
    assert not changed, f"{len(changed)} of {len(digests)} cases differ from the recorded digests: {changed[:20]}"


def test_outputs_differ_from_the_pre_port_kernels_only_where_recorded(digests):
    pre_port = load(bitwise.path(bitwise.flavour(), pre_port=True))
    drift = load(os.path.join(bitwise.DATA, "bitwise_port_drift.json"))[bitwise.flavour()]
    # (cases added since the port have no pre-port digest)
    changed = sorted(name for name in digests if name in pre_port and digests[name] != pre_port[name])
    assert set(changed) <= set(drift), sorted(set(changed) - set(drift))
    assert len(drift) <= 4  # (the port's known drift: tests/bitwise.py)


def test_digests_exist_for_every_x86_flavour():
    assert all(os.path.exists(bitwise.path(f, pre)) for f in ("avx2", "avx512") for pre in (False, True))
