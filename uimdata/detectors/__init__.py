"""Detector registry: one detector per module, registered by its ``issue`` name."""

from __future__ import annotations

from uimdata.detectors.base import BatchDetector, Detector, DetectorResult
from uimdata.errors import UimError

REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    if cls.issue in REGISTRY:
        raise ValueError(f"detector '{cls.issue}' is registered twice")
    REGISTRY[cls.issue] = cls
    return cls


def get(issue: str) -> type[Detector]:
    try:
        return REGISTRY[issue]
    except KeyError:
        raise UimError(f"unknown detector '{issue}'", expected=f"one of {sorted(REGISTRY)}",
                       got=repr(issue)) from None


# Import the built-in detectors so they register themselves (order = default run order).
from uimdata.detectors import exact_duplicate, near_duplicate, corrupted  # noqa: E402,F401,I001
from uimdata.detectors import low_quality  # noqa: E402,F401,I001
from uimdata.detectors import label, outlier, long_tail, off_target  # noqa: E402,F401,I001

__all__ = ["REGISTRY", "BatchDetector", "Detector", "DetectorResult", "get", "register"]
