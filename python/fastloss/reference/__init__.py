"""Pure-torch implementations of every fastloss op, with the same signatures.

They are the oracle of the tests and benchmarks (one definition of "correct" for both) and the
fallback when the compiled kernels are unavailable or FASTLOSS_BACKEND=reference is set. They
favour clarity over speed and memory: each materialises its intermediates.
"""
from .sigmoid_focal import sigmoid_focal_loss

__all__ = ["sigmoid_focal_loss"]
