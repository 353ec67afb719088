"""The API's ``progress=`` switch: uimdata's per-stage bars and Hugging Face's model-loading bar, on,
off, or as the surrounding settings say."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def bars(progress: bool | None) -> Iterator[None]:
    """``True``: uimdata's executors show their bars. ``False``: no bar from them, nor from Hugging Face
    while a model loads (transformers' "Loading weights"); the previous settings are restored
    afterwards. ``None`` (the command line): nothing changed."""
    from uimdata.executors.base import progress_bars

    if progress is None:
        yield
        return
    if progress:
        with progress_bars(True):
            yield
        return
    try:
        from huggingface_hub.utils import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )
    except ImportError:  # pragma: no cover - a dependency of sentence-transformers
        with progress_bars(False):
            yield
        return
    hub_off = are_progress_bars_disabled()
    tf = sys.modules.get("transformers.utils.logging")
    tf_on = tf.is_progress_bar_enabled() if tf is not None else not hub_off
    disable_progress_bars()
    if tf is not None:
        tf.disable_progress_bar()
    try:
        with progress_bars(False):
            yield
    finally:
        tf = sys.modules.get("transformers.utils.logging")  # imported meanwhile: it read the hub's setting
        if tf is not None and tf_on:
            tf.enable_progress_bar()
        (disable_progress_bars if hub_off else enable_progress_bars)()
