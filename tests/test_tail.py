"""Tail-aware curation: a rare class's clean members stay, the poisoned concept is still repaired, the probe
says who was hurt, and the inherited-label-bias flags stay on the planted concept."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest

from tests.conftest import POISONED_CONCEPT, _space, make_world
from uimdata.curate import decide
from uimdata.link import LinkConfig, link
from uimdata.probe import class_table, probe, rarest_classes
from uimdata.rundir import RunDir
from uimdata.stats import mcnemar_worse
from uimdata.synth.labels import plant_label_noise

RARE = ("class_6", "class_7")
DETECTORS = ("exact_duplicate", "label", "outlier", "long_tail")


def _rare_and_noisy(train: pl.DataFrame):
    """Two rare classes (30 rows each, among classes of 240), then 5 % uniform label noise."""
    rng = np.random.default_rng(0)
    parts = [train.filter(~pl.col("label").is_in(RARE))]
    for c in RARE:
        rows = train.filter(pl.col("label") == c)
        parts.append(rows[np.sort(rng.choice(rows.height, 30, replace=False)).tolist()])
    train = pl.concat(parts).sort("id")
    train, t = plant_label_noise(train, 0.05, 1, mode="uniform")
    return train, set(t["id"])


@pytest.fixture(scope="module")
def tail_world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tail")
    run, dpath, truth, _ = make_world(tmp, poison=True, detectors=DETECTORS, extra=_rare_and_noisy)
    link(LinkConfig(run=str(run), downstream=str(dpath)))
    test = tmp / "test.parquet"
    _space(seed=2, per_concept=30, prefix="e", row_spread=0.6).write_parquet(test)
    off = tmp / "off.toml"
    off.write_text('base = "default"\n[tail]\naction = "off"\n')
    return run, test, truth, off


def test_clean_members_of_a_rare_class_are_not_dropped(tail_world):
    run, _, truth, off = tail_world
    samples = pl.read_parquet(run / "samples.parquet", columns=["id", "label"])
    clean_rare = samples.filter(pl.col("label").is_in(RARE) & ~pl.col("id").is_in(list(truth)))["id"]
    assert clean_rare.len() >= 40

    def lost(policy: str) -> int:
        m = decide(RunDir(run), policy).manifest.filter(pl.col("id").is_in(clean_rare.implode()))
        return int(((m["action"] == "dropped") | (m["label"] != m["original_label"])).sum())

    # without the guard, confident learning takes a large share of the rare classes' clean rows
    assert lost(str(off)) >= 0.3 * clean_rare.len()
    assert lost("default") <= 0.1 * clean_rare.len()
    m = decide(RunDir(run), "default").manifest.filter(pl.col("id").is_in(clean_rare.implode()))
    guarded = m.filter(pl.col("reason").str.contains("tail guard"))
    assert guarded.height > 0 and (guarded["action"] != "dropped").all()


def test_rare_class_accuracy_not_below_raw_and_poison_repaired(tail_world):
    run, test, *_ = tail_world
    res = probe(str(run), str(test), ("default",))
    cls = res.classes.filter(pl.col("label").is_in(RARE))
    for r in cls.filter(pl.col("policy") == "default").iter_rows(named=True):
        assert r["accuracy"] >= r["raw_accuracy"], r
    assert not res.hurt["default"]
    t = pl.read_parquet(test, columns=["label", "concept"])
    concept = t["concept"].to_numpy() == POISONED_CONCEPT
    y = np.array(t["label"].to_list(), dtype=object)
    assert (res.predictions["raw"][concept] == y[concept]).mean() < 0.5
    assert (res.predictions["default"][concept] == y[concept]).mean() >= 0.85
    # the tail's accuracy is a metric of its own, next to overall accuracy
    assert {"accuracy", "tail10_accuracy"} <= set(res.results["metric"].to_list())


def test_probe_lists_the_class_a_policy_hurt(tail_world):
    run, test, *_ = tail_world
    samples = pl.read_parquet(run / "samples.parquet", columns=["id", "label"])
    # a policy that drops most of class_2: its accuracy must fall, significantly, and be listed
    rng = np.random.default_rng(0)
    bad = samples.with_columns(pl.when((pl.col("label") == "class_2") & pl.Series(rng.random(samples.height) < 0.97))
                               .then(pl.lit("dropped")).otherwise(pl.lit("kept")).alias("action"),
                               pl.lit(1.0).alias("weight"))
    res = probe(str(run), str(test), (), extra_variants={"hurts_class_2": bad})
    assert "class_2" in res.hurt["hurts_class_2"]
    row = res.classes.filter((pl.col("policy") == "hurts_class_2") & (pl.col("label") == "class_2")).row(0, named=True)
    assert row["hurt"] and row["delta"] < -0.2 and row["ci_lo"] <= row["accuracy"] <= row["ci_hi"]
    assert row["n_train"] < row["n_train_raw"]
    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    listed = con.sql("SELECT label FROM probe_classes WHERE hurt").pl()["label"].to_list()
    assert "class_2" in listed


def test_class_table_and_mcnemar():
    y = np.array(["a"] * 20 + ["b"] * 20, dtype=object)
    raw = y.copy()
    worse = y.copy()
    worse[:12] = "b"   # class a: 20/20 -> 8/20
    t = class_table(y, {"raw": raw, "p": worse}, {"raw": {"a": 50, "b": 50}, "p": {"a": 5, "b": 50}}, ["a"])
    a = t.filter((pl.col("policy") == "p") & (pl.col("label") == "a")).row(0, named=True)
    b = t.filter((pl.col("policy") == "p") & (pl.col("label") == "b")).row(0, named=True)
    assert a["hurt"] and a["delta"] == pytest.approx(-0.6) and a["is_tail10"] and a["n_train"] == 5
    assert not b["hurt"] and b["p_value"] == 1.0
    assert mcnemar_worse(np.ones(10, bool), np.ones(10, bool)) == 1.0
    assert rarest_classes(["x", "x", "y", "z", "z", "z"], 2) == ["y", "x"]


def test_bias_flags_stay_on_the_planted_concept(tail_world):
    run, *_ = tail_world
    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    flagged = set(con.sql("SELECT id FROM flags WHERE is_inherited_label_bias_issue").pl()["id"].to_list())
    samples = con.sql("SELECT id, label FROM samples").pl()
    concept = _space(seed=0, row_spread=0.6).select("id", "concept")
    poisoned = set(samples.join(concept, on="id").filter((pl.col("concept") == POISONED_CONCEPT)
                                                         & (pl.col("label") == "class_5"))["id"])
    tp = len(flagged & poisoned)
    assert tp / max(len(flagged), 1) >= 0.85
    assert tp / max(len(poisoned), 1) >= 0.8
