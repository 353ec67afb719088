"""Keyword options of the API commands, checked and turned into the pipeline configs' fields: unknown
names, the choices ``uim scan`` validates (with the command line's messages), comma-separated lists,
and the column-name spellings (``text=`` or ``text_col=``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

from uimdata.errors import UimError

#: the command-line checks of scan options, shared by ``uim scan`` and :func:`uimdata.scan`
CHOICES = {"label_model": ("--label-model", ("ensemble", "embedding", "logreg", "knn", "text"),
                           "ensemble, embedding, logreg, knn or text"),
           "embedding_dtype": ("--embedding-dtype", ("float32", "float16"), "float32 or float16"),
           "index": ("--index", ("auto", "hnsw", "ivf", "ivfpq"), "auto, hnsw, ivf or ivfpq"),
           "encoding_errors": ("--encoding-errors", ("strict", "replace"), "strict or replace"),
           "chunking": ("--chunking", ("auto", "none"), "auto or none")}
#: the policies ``probe`` compares with the raw corpus unless told otherwise
DEFAULT_POLICIES = ("conservative", "default", "aggressive")
#: the ``probe`` options besides the evaluation set's embedding
PROBE_OPTIONS = ("allow_leak", "label_col", "text_col", "top_slices", "k", "device", "cache_dir")


def names(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """A list option: a sequence as it is, ``"a,b"`` split on commas (empty parts dropped), None empty."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)


def check_unknown(func: str, given: Mapping[str, Any], allowed: Sequence[str]) -> None:
    extra = sorted(set(given) - set(allowed))
    if extra:
        raise UimError(f"{func}: unknown option{'s' if len(extra) > 1 else ''} {', '.join(extra)}",
                       expected="one of " + ", ".join(sorted(allowed)), got=", ".join(extra))


def check_scan_options(**values: Any) -> None:
    """The choices ``uim scan`` validates before any work (label_model, embedding_dtype, index,
    encoding_errors, chunking), with the command line's messages."""
    for key, value in values.items():
        flag, choices, words = CHOICES[key]
        if value not in choices:
            raise UimError(flag, expected=words, got=repr(value))


def _fspath(opts: dict[str, Any], key: str) -> None:
    if opts.get(key) is not None:
        opts[key] = os.fspath(opts[key])


def scan_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``uimdata.scan``'s ``**options`` as ``ScanConfig`` fields: unknown names and bad choices are
    errors; ``detectors`` None = all, a list or ``"a,b"``, ``[]`` = none; ``keep_cols`` etc. accept
    ``"a,b"``."""
    from uimdata.scan import DEFAULT_DETECTORS, ScanConfig

    opts = dict(options)
    fixed = ("corpus", "out", "text_col", "label_col", "id_col", "embedding_col")
    check_unknown("scan", opts, [f.name for f in dataclasses.fields(ScanConfig) if f.name not in fixed])
    check_scan_options(**{k: opts[k] for k in CHOICES if k in opts})
    if "detectors" in opts:
        opts["detectors"] = DEFAULT_DETECTORS if opts["detectors"] is None else names(opts["detectors"])
    for key in ("keep_cols", "drop_cols", "group_cols"):
        if isinstance(opts.get(key), str):
            opts[key] = list(names(opts[key]))
    _fspath(opts, "cache_dir")
    return opts


def column_aliases(options: Mapping[str, Any], short: Sequence[str]) -> dict[str, Any]:
    """``text=`` etc. as ``text_col=`` (both spellings accepted; ``embedding`` too)."""
    opts = dict(options)
    for name in (*short, "embedding"):
        if name in opts:
            if f"{name}_col" in opts:
                raise UimError(f"both {name}= and {name}_col= given", expected="one of them")
            opts[f"{name}_col"] = opts.pop(name)
    return opts


def link_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """``Run.link``'s ``**options`` as ``LinkConfig`` fields, and the embedding (a column name, an array
    or None) apart."""
    from uimdata.link import LinkConfig

    opts = column_aliases(options, ("text", "label", "prediction", "correct", "loss", "id"))
    embedding = opts.pop("embedding_col", None)
    if "slice_col" in opts:
        opts["slice_cols"] = opts.pop("slice_col")
    if "slice_cols" in opts:
        opts["slice_cols"] = names(opts["slice_cols"])
    _fspath(opts, "cache_dir")
    allowed = [f.name for f in dataclasses.fields(LinkConfig) if f.name not in ("run", "downstream")]
    check_unknown("link", opts, allowed)
    return opts, embedding


def probe_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """``Run.probe``'s ``**options`` as ``uimdata.probe.probe`` arguments, and the embedding apart."""
    opts = column_aliases(options, ("text", "label"))
    embedding = opts.pop("embedding_col", None)
    _fspath(opts, "cache_dir")
    check_unknown("probe", opts, PROBE_OPTIONS)
    return opts, embedding


def policy_names(policies: str | Sequence[str | os.PathLike[str]]) -> tuple[str, ...]:
    """The policies to probe: ``"a,b"`` or a sequence (of names or TOML paths); empty = the defaults."""
    chosen = names(policies) if isinstance(policies, str) else tuple(os.fspath(p) for p in policies)
    return chosen or DEFAULT_POLICIES
