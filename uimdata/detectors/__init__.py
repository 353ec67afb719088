"""Detector registry: one detector per module, registered by its ``issue`` name.

The registry is where the rest of the package learns about issues: the scan's detectors
(:func:`scan_names`, :func:`scan_detector`), the policies of ``uim curate``, the report's example
columns and the lines of ``uim summary`` all come from the registered classes.
"""

from __future__ import annotations

from uimdata.detectors.base import BatchDetector, Detector, DetectorResult
from uimdata.errors import UimError

REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    if cls.issue in REGISTRY:
        raise ValueError(f"detector '{cls.issue}' is registered twice")
    REGISTRY[cls.issue] = cls
    return cls


def unregister(issue: str) -> None:
    """Forget a registered detector (a test's own detector, once the test is done)."""
    REGISTRY.pop(issue, None)


def get(issue: str) -> type[Detector]:
    try:
        return REGISTRY[issue]
    except KeyError:
        raise UimError(f"unknown detector '{issue}'", expected=f"one of {sorted(REGISTRY)}",
                       got=repr(issue)) from None


def scan_names() -> tuple[str, ...]:
    """The detectors ``uim scan`` runs, in registry order (its default run order)."""
    return tuple(name for name, cls in REGISTRY.items() if cls.runs_in == "scan")


def scan_detector(issue: str) -> type[Detector]:
    """The detector ``issue`` for a scan; an unknown name, or one another command writes (``uim link``),
    is a one-line error."""
    cls = REGISTRY.get(issue)
    if cls is None:
        raise UimError(f"unknown detector '{issue}'", expected=f"one of {sorted(scan_names())}", got=repr(issue))
    if cls.runs_in != "scan":
        raise UimError(f"detector '{issue}' runs in `uim {cls.runs_in}`, not in `uim scan`",
                       expected=f"one of {sorted(scan_names())}", got=repr(issue),
                       hint=f"run `uim {cls.runs_in}` on the finished scan to add its columns")
    return cls


# Import the built-in detectors so they register themselves (order = default run order).
from uimdata.detectors import exact_duplicate, near_duplicate, corrupted  # noqa: E402,F401,I001
from uimdata.detectors import low_quality  # noqa: E402,F401,I001
from uimdata.detectors import label, inherited_label_bias, outlier, long_tail, off_target  # noqa: E402,F401,I001

__all__ = ["REGISTRY", "BatchDetector", "Detector", "DetectorResult", "get", "register", "scan_detector",
           "scan_names", "unregister"]
