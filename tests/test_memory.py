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


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="VmHWM is reset through Linux's procfs")
def test_each_step_reports_its_own_peak_and_the_executor_the_process_peak():
    import numpy as np

    from uimdata.executors.base import reset_peak_rss
    from uimdata.executors.local import LocalExecutor

    if not reset_peak_rss():
        pytest.skip("no permission to reset this process' peak")
    ex = LocalExecutor(progress=False)
    ex.record("small", 0.0, 0)

    def big() -> int:
        a = np.ones(400 << 17)  # 400 MB, touched
        return int(a[::4096].sum() > 0)

    ex.run_global("big", big, 1)
    ex.run_global("after", lambda: 0, 1)
    t = ex.timings
    assert t["big"]["step_peak_rss_mb"] > t["after"]["step_peak_rss_mb"] + 300
    assert t["after"]["peak_rss_mb"] == ex.peak_rss_mb >= t["big"]["step_peak_rss_mb"]
