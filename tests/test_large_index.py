"""More than 2^31 elements on the CPU: every flat offset past int32's range is computed in 64 bits.
fp16 logits of 2^31 + 3·C elements (4 GiB, and as much again for the gradient); the answer is
checked at the far end, where a 32-bit offset would have wrapped. All rows but the last two carry
the ignored label, so the kernels skip them (they still write their zero gradient): fast enough to
run under AddressSanitizer too (scripts/sanitize.sh), which also catches a wrapped access that
happens to land in mapped memory."""

import math

import pytest
import torch

import fastloss

CLASSES = 64
ROWS = 2**31 // CLASSES + 3
# ~9 GiB each: under pytest-xdist these run one after the other, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("large_index")


@pytest.fixture
def logits():
    x = torch.zeros((ROWS, CLASSES), dtype=torch.float16)
    assert x.numel() > 2**31
    yield x
    del x


def test_sigmoid_focal_past_two_to_the_31_elements(logits):
    labels = torch.full((ROWS,), -100)  # ignored, but the last two rows
    labels[-2] = CLASSES  # background: its last logit is a wrong positive, costing α_neg·σ(20)^2·20 ≈ 0.75·20
    labels[-1] = CLASSES - 1  # its last logit is a correct positive
    logits[-2:] = -20.0
    logits[-2, -1] = logits[-1, -1] = 20.0
    loss = fastloss.sigmoid_focal_loss(logits, labels, reduction="sum")
    assert loss.item() == pytest.approx(15.0, rel=1e-3)
    x = logits.requires_grad_()
    fastloss.sigmoid_focal_loss(x, labels, reduction="sum").backward()
    assert x.grad[-2, -1].item() == pytest.approx(0.75, rel=1e-2)
    assert abs(x.grad[-1, -1].item()) < 1e-6 and x.grad[0, 0].item() == 0.0


def test_cross_entropy_past_two_to_the_31_elements(logits):
    labels = torch.full((ROWS,), -100)  # ignored, but the last two rows
    labels[-2], labels[-1] = 0, 5
    logits[-1, 5] = 10.0  # the last row is nearly certain of its label; the one before is uniform
    loss = fastloss.softmax_focal_loss(logits, labels, gamma=0.0, reduction="none")
    expected_last = math.log1p((CLASSES - 1) * math.exp(-10.0))
    assert loss[0].item() == 0.0
    assert loss[-2].item() == pytest.approx(math.log(CLASSES), rel=1e-3)
    assert loss[-1].item() == pytest.approx(expected_last, rel=1e-2)
    del loss
    x = logits.requires_grad_()
    fastloss.softmax_focal_loss(x, labels, gamma=0.0, reduction="sum").backward()
    assert x.grad[-1, 5].item() == pytest.approx(-expected_last, rel=2e-2)
    assert x.grad[-2, 0].item() == pytest.approx(1 / CLASSES - 1, rel=1e-3)
    assert x.grad[0, 0].item() == 0.0
