"""Benchmark one scan: run it in a fresh process and score its flags against the planted truth.

``run_scan`` runs ``uim scan`` in a child process, so that its peak RSS is its own.

Shared by the benchmarks (``pipelines.bench``, ``bench_corpora``, ``bench_detectors``,
``bench_domains``, ``bench_scale``, ``bench_tail``); imports no other pipelines module.
``python -m pipelines.bench_scan CORPUS OUT [ENGINE] [INDEX]`` is the child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]


def scan_child(corpus: str, out: str, engine: str = "local", index: str = "auto") -> None:
    """Scan in this process and print one JSON line: stage timings, seconds, peak RSS."""
    from uimdata.executors.base import peak_rss_mb
    from uimdata.executors.local import LocalExecutor
    from uimdata.scan import ScanConfig, scan

    if engine == "ray":
        from uimdata.executors.ray import RayExecutor

        ex = RayExecutor(num_cpus=2, progress=False)
    else:
        ex = LocalExecutor(progress=False)
    start = time.perf_counter()
    res = scan(ScanConfig(corpus=corpus, out=out, engine=engine, index=index), ex)
    total = time.perf_counter() - start
    # the executor's peak over every step (each step restarts the process' VmHWM), and what came after
    print(json.dumps({"timings": res.timings, "seconds": total, "peak_rss_mb": max(ex.peak_rss_mb, peak_rss_mb())}))


def run_scan(corpus: Path, out: Path, cold_cache: bool = False, engine: str = "local", index: str = "auto") -> dict:
    """Scan in a fresh process (its own peak RSS; with Ray, the driver's); ``cold_cache``: an empty
    embedding cache."""
    env = dict(os.environ)
    # the child runs ``-m pipelines.bench_scan``: the repository root must be importable from any cwd
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory() as cache:
        if cold_cache:
            env["UIM_CACHE_DIR"] = cache
        proc = subprocess.run([sys.executable, "-m", "pipelines.bench_scan", str(corpus), str(out), engine, index],
                              capture_output=True, text=True, check=False, env=env)
    if proc.returncode:
        sys.exit(f"bench scan of {corpus} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def flags_of(run: Path) -> pl.DataFrame:
    """The run's ``flags`` view."""
    import duckdb

    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    return con.sql("SELECT * FROM flags").pl()


def near_duplicate_membership(flags: pl.DataFrame, truth: pl.DataFrame) -> dict:
    """Membership P/R/F1 of the near-duplicate clusters (Datalab's semantics), exact duplicates left out."""
    from uimdata.evaluate import membership_prf

    near_pairs = truth.filter(pl.col("defect") == "near_duplicate").select("id", "source_id").rows()
    near_clusters = set(flags.filter(pl.col("is_near_duplicate_issue"))["duplicate_cluster"])
    return membership_prf(
        {i for i, c in flags.select("id", "duplicate_cluster").rows() if c in near_clusters},
        near_pairs, exact_ids=set(flags.filter(pl.col("is_exact_duplicate_issue"))["id"])).row()


def quality(flags: pl.DataFrame, truth: pl.DataFrame) -> dict:
    """P/R/F1 of the duplicate and corrupted flags against the planted truth."""
    from uimdata.evaluate import duplicate_scores, set_prf

    q = {k: v.row() for k, v in duplicate_scores(flags, truth).items()}
    q["corrupted"] = set_prf(set(flags.filter(pl.col("is_corrupted_issue"))["id"]),
                             set(truth.filter(pl.col("defect") == "corrupted")["id"])).row()
    q["near_duplicate_membership"] = near_duplicate_membership(flags, truth)
    return q


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("engine", nargs="?", default="local")
    ap.add_argument("index", nargs="?", default="auto")
    a = ap.parse_args()
    scan_child(a.corpus, a.out, a.engine, a.index)
