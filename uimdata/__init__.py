"""uimdata: understand, interpret and mitigate the weaknesses of pre-training corpora.

The Python API (``docs/python-api.md``)::

    import uimdata

    run = uimdata.scan(df)            # a path, polars/pandas DataFrame, Arrow table, datasets.Dataset, dicts
    run.summary(); run.flags(); run.issues("label"); run.sql("SELECT ...")
    run = uimdata.open("runs/demo")   # an existing run directory

``import uimdata`` stays cheap: the API (and everything it needs) is imported on first use.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Run", "UimError", "__version__", "open", "scan"]

if TYPE_CHECKING:
    from uimdata.api import Run, open, scan
    from uimdata.errors import UimError


class _CallableScanModule(types.ModuleType):
    """``uimdata.scan`` is both the pipeline module (``uimdata.scan.ScanConfig``, ``from uimdata.scan
    import ...``) and the API function: calling the module calls :func:`uimdata.api.scan`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from uimdata.api import scan as api_scan

        return api_scan(*args, **kwargs)


class _Package(types.ModuleType):
    """The ``uimdata`` package: ``uimdata.scan`` is always callable (see :class:`_CallableScanModule`),
    however and whenever the submodule of that name is imported."""

    @property
    def scan(self) -> Any:
        import importlib

        return importlib.import_module("uimdata.scan")  # the import system binds it through the setter

    @scan.setter
    def scan(self, module: Any) -> None:
        if isinstance(module, types.ModuleType) and type(module) is types.ModuleType:
            module.__class__ = _CallableScanModule
            from uimdata.api import scan as api_scan

            module.__signature__ = __import__("inspect").signature(api_scan)  # type: ignore[attr-defined]


def __getattr__(name: str) -> Any:
    if name in ("Run", "open"):
        from uimdata import api

        return getattr(api, name)
    if name == "UimError":
        from uimdata.errors import UimError

        return UimError
    raise AttributeError(f"module 'uimdata' has no attribute {name!r}")


sys.modules[__name__].__class__ = _Package
