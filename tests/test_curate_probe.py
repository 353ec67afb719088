"""uim curate (policies, manifest, determinism, formats) and uim probe (the closed loop)."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from tests.conftest import make_world
from uimdata.cli import app
from uimdata.curate import curate, decide, load_policy
from uimdata.errors import UimError
from uimdata.link import LinkConfig, link
from uimdata.probe import probe
from uimdata.rundir import RunDir
from uimdata.synth import plant_exact_duplicates
from uimdata.synth.labels import plant_label_noise

DETECTORS = ("exact_duplicate", "label", "outlier", "long_tail")


def _extra(train: pl.DataFrame):
    train, t1 = plant_label_noise(train, 0.05, 1, mode="uniform")
    train, t2 = plant_exact_duplicates(train, 25, 2)
    return train, set(t1["id"]) | set(t2["id"])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("curate")
    run, dpath, truth, down = make_world(tmp, poison=True, detectors=DETECTORS, extra=_extra)
    test = tmp / "test.parquet"
    from tests.conftest import _space

    t = _space(seed=2, per_concept=30, prefix="e", row_spread=0.6)
    t.with_columns(pl.Series("prediction", ["x"] * t.height)).write_parquet(test)
    link(LinkConfig(run=str(run), downstream=str(dpath)))
    return run, dpath, test, truth, tmp


def _flags(run) -> pl.DataFrame:
    return duckdb.connect(str(run / "uim.duckdb"), read_only=True).sql("SELECT * FROM flags").pl()


def test_each_policy_action_on_planted_rows(world):
    run, *_ = world
    f = _flags(run)
    default = decide(RunDir(run), "default").manifest.join(f, on="id")
    # label issues: relabelled to the suggestion when p >= 0.7, dropped otherwise
    lab = default.filter(pl.col("is_label_issue") & ~pl.col("is_inherited_label_bias_issue")
                         & ~pl.col("is_outlier_issue") & pl.col("duplicate_of").is_null())
    assert lab.height > 0
    strong = lab.filter(pl.col("suggested_label_prob") >= 0.7)
    assert (strong["action"] == "relabelled").all() and (strong["label"] == strong["suggested_label"]).all()
    assert (strong["original_label"] != strong["label"]).all()
    assert (lab.filter(pl.col("suggested_label_prob") < 0.7)["action"] == "dropped").all()
    # inherited label bias (uim link): relabelled to the downstream label
    bias = default.filter(pl.col("is_inherited_label_bias_issue") & (pl.col("action") == "relabelled"))
    assert bias.height > 20 and (bias["label"] == "class_3").all()
    # aggressive drops every label issue; conservative keeps the weak ones
    agg = decide(RunDir(run), "aggressive").manifest.join(f, on="id")
    assert (agg.filter(pl.col("is_label_issue"))["action"] == "dropped").all()
    con = decide(RunDir(run), "conservative").manifest.join(f, on="id")
    weak = con.filter(pl.col("is_label_issue") & (pl.col("suggested_label_prob") < 0.9) & pl.col("duplicate_of").is_null()
                      & ~pl.col("is_inherited_label_bias_issue"))
    assert weak.height > 0 and (weak["action"] == "kept").all()
    # outliers dropped by default, kept by conservative
    out = default.filter(pl.col("is_outlier_issue") & pl.col("duplicate_of").is_null())
    assert (out["action"] == "dropped").all()
    # long tail: reweighted (weight > 1, capped) and never dropped for it
    tail = default.filter(pl.col("is_long_tail_issue") & (pl.col("issue") == "long_tail"))
    assert (tail["action"] == "reweighted").all() and (tail["weight"] > 1).all() and (tail["weight"] <= 5).all()


def test_one_member_per_duplicate_cluster_and_reasons(world):
    run, *_ = world
    f = _flags(run)
    m = decide(RunDir(run), "default").manifest.join(f.select("id", "duplicate_of"), on="id")
    groups = m.with_columns(pl.coalesce("duplicate_of", "id").alias("g")).filter(
        pl.col("g").is_in(m["duplicate_of"].drop_nulls().implode()))
    kept = groups.group_by("g").agg((pl.col("action") != "dropped").sum().alias("kept"))
    assert kept.height == 25 and (kept["kept"] == 1).all()
    assert m.height == f.height  # every input row is in the manifest
    changed = m.filter(pl.col("action") != "kept")
    assert changed["reason"].null_count() == 0 and changed["issue"].null_count() == 0
    # keep = longest: still one per cluster
    assert load_policy("default")[1]["exact_duplicate"]["keep"] == "first"


def test_toml_policy_and_its_errors(world, tmp_path):
    run, *_ = world
    p = tmp_path / "p.toml"
    p.write_text('base = "default"\n[exact_duplicate]\naction = "keep"\n[label]\naction = "drop"\n')
    m = decide(RunDir(run), str(p)).manifest.join(_flags(run), on="id")
    assert (m.filter(pl.col("duplicate_of").is_not_null() & (pl.col("issue") == "exact_duplicate"))["action"]
            == "kept").all()
    assert (m.filter(pl.col("is_label_issue"))["action"] == "dropped").all()
    for text, msg in [('[label]\nactoin = "drop"\n', "unknown key 'actoin'"),
                      ('[label]\naction = "explode"\n', "does not apply"),
                      ('[lable]\naction = "drop"\n', "unknown issue"),
                      ('[label]\nmin_prob = 2\n', "min_prob out of range"),
                      ("[label\n", "not valid TOML")]:
        p.write_text(text)
        with pytest.raises(UimError, match=msg) as e:
            load_policy(str(p))
        assert str(p) in str(e.value)
    with pytest.raises(UimError, match="unknown policy"):
        load_policy("nonsense")


def test_export_is_deterministic_and_round_trips(world, tmp_path):
    run, *_ = world
    a, b = tmp_path / "a", tmp_path / "b"
    curate(str(run), str(a))
    curate(str(run), str(b))
    for name in ("curated.parquet", "manifest.parquet"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    df = pl.read_parquet(a / "curated.parquet")
    assert df.columns[:5] == ["id", "text", "label", "original_label", "weight"] and "embedding" in df.columns
    man = pl.read_parquet(a / "manifest.parquet")
    assert df.height == (man["action"] != "dropped").sum()
    from datasets import load_dataset, load_from_disk

    ds = load_dataset("parquet", data_files=str(a / "curated.parquet"), split="train")
    assert ds.num_rows == df.height and ds.column_names[:5] == df.columns[:5]
    assert duckdb.sql(f"SELECT count(*) FROM '{a / 'curated.parquet'}'").fetchall()[0][0] == df.height
    curate(str(run), str(tmp_path / "j"), fmt="jsonl")
    curate(str(run), str(tmp_path / "j2"), fmt="jsonl")
    assert (tmp_path / "j" / "curated.jsonl").read_bytes() == (tmp_path / "j2" / "curated.jsonl").read_bytes()
    j = pl.read_ndjson(tmp_path / "j" / "curated.jsonl")
    assert j["id"].to_list() == df["id"].to_list() and j["label"].to_list() == df["label"].to_list()
    curate(str(run), str(tmp_path / "h"), fmt="hf")
    h = load_from_disk(str(tmp_path / "h" / "curated"))
    assert h["id"] == df["id"].to_list()
    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    assert con.sql("SELECT count(*) FROM curation").fetchall()[0][0] == man.height
    up = curate(str(run), str(tmp_path / "u"), upsample=True)[1]
    assert pl.read_parquet(up).height > df.height


def test_probe_improves_on_planted_noise_and_refuses_leaks(world):
    run, dpath, test, *_ = world
    with pytest.raises(UimError, match="used by `uim link`"):
        probe(str(run), str(dpath), ("default",))
    res = probe(str(run), str(test), ("default",))
    acc = {r["policy"]: r["value"] for r in res.results.filter(pl.col("metric") == "accuracy").iter_rows(named=True)}
    assert acc["default"] > acc["raw"] + 0.01
    sl = res.results.filter(pl.col("metric") == "slice_accuracy")
    assert sl.height == 2 and sl.filter(pl.col("policy") == "default")["value"][0] > sl.filter(
        pl.col("policy") == "raw")["value"][0]
    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    assert con.sql("SELECT count(DISTINCT policy) FROM probe_results").fetchall()[0][0] == 2
    leak = probe(str(run), str(dpath), ("default",), allow_leak=True)
    assert leak.overlap == leak.n_eval


def test_probe_does_not_improve_a_clean_corpus(tmp_path):
    run, dpath, _, _ = make_world(tmp_path, poison=False, detectors=DETECTORS)
    res = probe(str(run), str(dpath), ("default",))
    acc = {r["policy"]: r["value"] for r in res.results.filter(pl.col("metric") == "accuracy").iter_rows(named=True)}
    assert abs(acc["default"] - acc["raw"]) <= 0.01
    assert res.link_source is None


def test_cli_curate_and_probe(world, tmp_path):
    run, _, test, *_ = world
    r = CliRunner().invoke(app, ["curate", str(run), "-o", str(tmp_path / "c"), "--policy", "aggressive"],
                           env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "dropped" in r.output and (tmp_path / "c" / "manifest.parquet").exists()
    r = CliRunner().invoke(app, ["probe", str(run), str(test), "--policy", "default"], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert "evaluated on" in r.output and "raw" in r.output and "default" in r.output
    r = CliRunner().invoke(app, ["curate", str(run), "-o", str(tmp_path / "d"), "--format", "xml"])
    assert r.exit_code == 2 and "parquet | jsonl | hf" in r.output
