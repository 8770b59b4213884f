"""fastloss: fused forward and backward kernels for detection and segmentation losses (CPU and CUDA).

Every loss has the same signature in fastloss.reference (pure torch) and an mmdet-style module in
fastloss.nn. See README.md for the catalogue.
"""
from . import _backend
from ._version import __version__
from .sigmoid_focal import sigmoid_focal_loss

from . import nn, reference  # noqa: E402  (after the ops, which they wrap)

__all__ = ["__version__", "nn", "reference", "sigmoid_focal_loss"]
