"""The CPU kernels give, bit for bit, the numbers recorded, whichever SIMD flavour is loaded
(tests/bitwise.py: which cases, how they are digested and recorded)."""

import json

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
    recorded = load(bitwise.PATH)
    assert set(digests) == set(recorded), "the case list changed: record the digests again (tests/bitwise.py)"
    changed = sorted(name for name in digests if digests[name] != recorded[name])
    assert not changed, (
        f"{len(changed)} of {len(digests)} cases differ from the recorded digests with the "
        f"{bitwise.flavour()} kernels: {changed[:20]}"
    )
