"""Memory handed back between steps (glibc's heap keeps freed pages until it is trimmed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from uimdata.memory import _malloc_trim, release_memory


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux") or _malloc_trim() is None,
                    reason="glibc's heap (malloc_trim) and /proc are Linux's")
def test_freed_heap_pages_go_back_to_the_system_between_steps():
    blocks = [bytearray(4000) for _ in range(50_000)]  # 200 MB of small blocks on the heap
    pins = blocks[::64]  # a few stay alive, spread over the heap: free() alone cannot shrink it
    before = _rss_mb()
    del blocks
    freed = _rss_mb()
    release_memory()
    after = _rss_mb()
    assert len(pins) == 782
    if freed < before - 50:
        pytest.skip("this allocator returned the pages by itself: nothing left to release")
    assert after < freed - 120, (before, freed, after)
