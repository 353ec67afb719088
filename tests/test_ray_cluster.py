"""A Ray cluster of two nodes simulated on this machine (``ray.cluster_utils.Cluster``: two raylets of
1 CPU each, each with the smallest object store Ray allows, spilling to disk as soon as it is 0.1 % full)
scans a corpus of several parquet files and writes what the local engine writes."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import numpy as np
import polars as pl
import ray  # a dev dependency: its absence is a failure, not a skip
from ray.cluster_utils import Cluster

from uimdata.executors.local import LocalExecutor
from uimdata.scan import ScanConfig, scan
from uimdata.synth.space import concept_space

STORE = 80 * 1024 * 1024  # Ray's minimum is 75 MiB
#: the corpus is a few MB: objects go to the object store (not inline) from 1 KiB, and the store spills
#: them to disk when it is 0.1 % full (Ray's default: 80 %), so that the scan runs through spilled objects
SPILL_EARLY = {"object_spilling_threshold": 0.001, "min_spilling_size": 0, "max_direct_call_object_size": 1024}


def _spilled_objects(logs: Path) -> int:
    """Objects the cluster's raylets report having spilled (each logs its running total: "Spilled N MiB,
    M objects")."""
    return sum(max((int(m) for m in re.findall(r"Spilled \d+ MiB, (\d+) objects", f.read_text(errors="replace"))),
                   default=0) for f in logs.glob("raylet*.out"))


def _corpus(root) -> tuple[str, set[str], set[str]]:
    """Four parquet files (four read tasks) of a labelled corpus with given embeddings, planted exact and
    near copies, a corrupted row and flipped labels; returns the folder, the copies' and the corrupted ids."""
    df = concept_space(n_classes=6, concepts=3, per_concept=50, seed=3).drop("concept")
    rows = df.to_dicts()
    planted = [
        {**rows[4], "id": "x-exact"},
        {**rows[9], "id": "x-near", "text": rows[9]["text"].replace(rows[9]["text"].split()[0], "qq", 1)},
        {**rows[11], "id": "x-html", "text": "<div><a href='/x'>Home</a> | <script>var a=1;</script></div>"},
    ]
    df = pl.concat([df, pl.DataFrame(planted, schema=df.schema)])
    flip = np.random.default_rng(0).choice(df.height - 3, size=12, replace=False)
    labels = df["label"].to_list()
    for i in flip:
        labels[i] = "class_0" if labels[i] != "class_0" else "class_1"
    df = df.with_columns(pl.Series("label", labels))
    folder = root / "corpus"
    folder.mkdir()
    for k, start in enumerate(range(0, df.height, 230)):
        df.slice(start, 230).write_parquet(folder / f"part-{k}.parquet", row_group_size=100)
    return str(folder), {"x-exact", "x-near"}, {"x-html"}


def test_two_node_cluster_scans_as_the_local_engine(tmp_path):
    def too_slow(*_):  # a hung cluster must fail the test, not the CI run
        raise TimeoutError("the two-node Ray scan did not finish in 420 s")

    folder, copies, broken = _corpus(tmp_path)
    cfg = {"corpus": folder, "k": 5, "label_col": "label"}
    local = scan(ScanConfig(out=str(tmp_path / "local"), **cfg), LocalExecutor(progress=False))

    from uimdata.executors.ray import RayExecutor

    assert not ray.is_initialized()
    head = {"num_cpus": 1, "object_store_memory": STORE, "_system_config": SPILL_EARLY}  # the cluster's config
    cluster = Cluster(initialize_head=True, head_node_args=head)
    cluster.add_node(num_cpus=1, object_store_memory=STORE)
    signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(420)
    try:
        ex = RayExecutor(address=cluster.address, progress=False)
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        assert ray.cluster_resources()["CPU"] == 2
        remote = scan(ScanConfig(out=str(tmp_path / "ray"), engine="ray", **cfg), ex)
        spilled = _spilled_objects(Path(cluster.head_node.get_logs_dir_path()))
    finally:
        signal.alarm(0)
        ray.shutdown()
        cluster.shutdown()

    assert spilled > 0, "the object stores never spilled: the test does not exercise spilling"
    assert remote.run.read_samples().equals(local.run.read_samples())
    a, b = pl.read_parquet(local.run.path / "flags.parquet"), pl.read_parquet(remote.run.path / "flags.parquet")
    assert a.columns == b.columns and a["id"].equals(b["id"])
    for c in a.columns:
        if c.endswith("_score"):
            assert (a[c] - b[c]).abs().max() < 1e-4, c
        else:
            assert a[c].equals(b[c]), c
    dups = set(b.filter(pl.col("is_exact_duplicate_issue") | pl.col("is_near_duplicate_issue"))["id"])
    assert copies <= dups
    assert set(b.filter(pl.col("is_corrupted_issue"))["id"]) == broken
    assert b["is_label_issue"].sum() > 0
