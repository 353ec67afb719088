"""kill -9 in the middle of embedding, then the same command again: finished batches are not embedded
again, the tables come out as from an uninterrupted scan, and no staging directory is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import duckdb
import polars as pl


def uim(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "uimdata.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_kill_9_mid_embed_then_resume(tmp_path):
    texts = pl.read_parquet("uimdata/data/wordnet/glosses.parquet", columns=["text", "label"]).sample(200, seed=4)
    corpus = tmp_path / "c.parquet"
    texts.write_parquet(corpus)
    cache = tmp_path / "cache"
    env = {**os.environ, "UIM_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    args = ["scan", str(corpus), "-o", str(tmp_path / "run"), "--embed-batch-rows", "20",
            "--detectors", "exact_duplicate,near_duplicate,corrupted"]

    proc = uim(*args, env=env)
    shards = lambda: list(cache.rglob("part-*.parquet"))  # noqa: E731
    deadline = time.time() + 240
    while len(shards()) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(shards())
    assert 3 <= done < 10, f"killed after {done} of 10 batches"
    assert not (tmp_path / "run").exists()
    assert list(tmp_path.glob(".run.*.partial")), "kill -9 leaves its staging dir"

    assert uim(*args, env=env).wait(timeout=300) == 0
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["embedding"]["from_cache"] >= done * 20
    assert meta["embedding"]["embedded"] == 200 - meta["embedding"]["from_cache"]
    assert not list(tmp_path.glob(".run.*.partial")), "the stale staging dir is cleaned up"

    # same tables as a scan that was never interrupted (fresh cache)
    env2 = {**env, "UIM_CACHE_DIR": str(tmp_path / "cache2")}
    assert uim(*[a if a != str(tmp_path / "run") else str(tmp_path / "clean") for a in args], env=env2).wait(
        timeout=300) == 0
    q = "SELECT * EXCLUDE (near_duplicate_score) FROM flags ORDER BY id"
    got = duckdb.connect(str(tmp_path / "run" / "uim.duckdb"), read_only=True).sql(q).pl()
    want = duckdb.connect(str(tmp_path / "clean" / "uim.duckdb"), read_only=True).sql(q).pl()
    assert got.equals(want)
