"""The corpus's own columns: kept in samples (nested types as DuckDB nests them) and in the curated
export; group columns and the issue_by_group view; the detected language of every row."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.conftest import CLEAN
from tests.test_bad_input import one_line_error
from uimdata.cli import app
from uimdata.rundir import RunDir
from uimdata.stats import wilson
from uimdata.store import connect

runner = CliRunner()
FAST = ("--detectors", "exact_duplicate,corrupted", "--k", "3")

META = {
    "n": pa.array([1, None, 3, 4], pa.int64()),
    "score": pa.array([0.5, 1.5, None, -2.0], pa.float64()),
    "ok": pa.array([True, False, None, True]),
    "when": pa.array([dt.datetime(2024, 1, 1, 12), None, dt.datetime(2020, 5, 6), dt.datetime(1999, 12, 31)],
                     pa.timestamp("us")),
    "tags": pa.array([["a", "b"], [], None, ["c"]], pa.list_(pa.string())),
    "info": pa.array([{"url": "http://x.org/1", "tokens": 12}, None, {"url": None, "tokens": 3},
                      {"url": "http://y.org", "tokens": None}],
                     pa.struct([("url", pa.string()), ("tokens", pa.int32())])),
    "nested": pa.array([[{"k": 1}], None, [], [{"k": None}, {"k": 2}]], pa.list_(pa.struct([("k", pa.int64())]))),
}


def _corpus(tmp_path, **extra) -> tuple:
    texts = [CLEAN[i][0] for i in range(4)]
    emb = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32).tolist()
    t = pa.table({"text": texts, **META, "embedding": emb, **extra})
    path = tmp_path / "c.parquet"
    pq.write_table(t, path)
    return path, t


def _scan(path, run, *extra: str):
    """`uim scan PATH -o RUN` with the fast detectors; it must succeed."""
    res = runner.invoke(app, ["scan", str(path), "-o", str(run), *FAST, *extra])
    assert res.exit_code == 0, res.output
    return res


def test_metadata_round_trips_into_samples_and_the_curated_export(tmp_path):
    path, t = _corpus(tmp_path)
    run = tmp_path / "run"
    _scan(path, run)
    con = connect(RunDir(run))
    cols = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                       "WHERE table_name = 'samples' ORDER BY ordinal_position").fetchall()
    names = [c for c, _ in cols]
    assert names[:5] == ["id", "text", "text_hash", "n_chars", "row"]  # the contract first, metadata after
    assert names[5:8] == ["source_file", "lang", "lang_conf"] and names[8:] == list(META)
    types = dict(cols)
    assert types["tags"] == "VARCHAR[]" and types["info"] == "STRUCT(url VARCHAR, tokens INTEGER)"
    assert types["nested"] == "STRUCT(k BIGINT)[]" and types["when"].startswith("TIMESTAMP")
    got = pq.read_table(run / "samples.parquet").select(list(META))
    assert got.to_pylist() == t.select(list(META)).to_pylist()
    assert con.execute("SELECT info.tokens FROM samples WHERE n = 1").fetchone()[0] == 12  # queryable as nested
    for fmt, name in (("parquet", "curated.parquet"), ("jsonl", "curated.jsonl")):
        out = tmp_path / f"cur-{fmt}"
        res = runner.invoke(app, ["curate", str(run), "-o", str(out), "--format", fmt])
        assert res.exit_code == 0, res.output
        cur = pl.read_parquet(out / name) if fmt == "parquet" else pl.read_ndjson(out / name)
        assert cur.height == 4 and {*META, "embedding"} <= set(cur.columns)
        if fmt == "parquet":
            assert pa.Table.from_pylist(cur.select(list(META)).to_dicts()).to_pylist() == \
                t.select(list(META)).to_pylist()
        else:
            assert cur["tags"].to_list() == [["a", "b"], [], None, ["c"]]
            assert cur["info"].to_list()[0] == {"url": "http://x.org/1", "tokens": 12}


def test_colliding_names_are_prefixed_and_keep_drop_choose(tmp_path):
    path, _ = _corpus(tmp_path, row=pa.array([10, 11, 12, 13]), Lang=pa.array(["fr"] * 4),
                      source_file=pa.array(["orig.txt"] * 4))
    run = tmp_path / "run"
    _scan(path, run, "--drop-cols", "nested,info")
    meta = json.loads((run / "run.json").read_text())
    assert meta["metadata"]["row"] == "meta_row" and meta["metadata"]["Lang"] == "meta_Lang"
    assert "nested" not in meta["metadata"] and "info" not in meta["metadata"]
    con = connect(RunDir(run))
    assert con.execute("SELECT list(meta_row ORDER BY row), list(row ORDER BY row) FROM samples").fetchone() == (
        [10, 11, 12, 13], [0, 1, 2, 3])
    assert con.execute("SELECT DISTINCT meta_source_file, source_file FROM samples").fetchall() == [
        ("orig.txt", "c.parquet")]
    con.close()  # DuckDB shares an open database per path within a process
    assert "meta_Lang" in meta["group_cols"]  # an input `lang` column is a group column too
    _scan(path, run, "--keep-cols", "n,tags")
    assert list(json.loads((run / "run.json").read_text())["metadata"]) == ["n", "tags"]
    one_line_error(runner.invoke(app, ["scan", str(path), "-o", str(run), *FAST, "--keep-cols", "nope"]),
                   "--keep-cols", "'nope'")


def _grouped(tmp_path) -> tuple:
    """60 rows from 3 sources; source b carries all 6 planted exact duplicates, source c the 3 empty texts."""
    rng = np.random.default_rng(1)
    texts, sources, hosts = [], [], []
    for i in range(60):
        src = "abc"[i % 3]
        texts.append(f"{src} row {i}: {CLEAN[i % len(CLEAN)][0]}")
        sources.append(src)
        hosts.append(f"https://www.{src}{'x' if i % 2 else 'y'}.com/p/{i}")
    for j, i in enumerate([1, 4, 7, 10, 13, 16]):   # source b rows copied from earlier b rows
        texts[i + 3 * 6 + 3 * j] = texts[i]
    for i in (2, 5, 8):                              # source c rows emptied
        texts[i] = ""
    emb = rng.normal(size=(60, 8)).astype(np.float32).tolist()
    df = pl.DataFrame({"text": texts, "source": sources, "url": hosts, "embedding": emb})
    path = tmp_path / "g.parquet"
    df.write_parquet(path)
    return path, df


def test_issue_by_group_equals_a_hand_count(tmp_path):
    path, df = _grouped(tmp_path)
    run = tmp_path / "run"
    _scan(path, run)
    con = connect(RunDir(run))
    flags = pl.read_parquet(run / "flags.parquet")
    hand = df.with_columns(dup=flags["is_exact_duplicate_issue"], bad=flags["is_corrupted_issue"])
    assert hand["dup"].sum() == 6 and hand.filter(pl.col("dup"))["source"].unique().to_list() == ["b"]
    assert hand["bad"].sum() >= 3 and set(hand.filter(pl.col("bad"))["source"]) == {"c"}
    got = {(g, i): (n, k, r, lo, hi, lift) for g, i, n, k, r, lo, hi, lift in con.execute(
        "SELECT \"group\", issue, n_rows, n_flagged, rate, rate_lo, rate_hi, lift FROM issue_by_group "
        "WHERE group_col = 'source'").fetchall()}
    for issue, col in (("exact_duplicate", "dup"), ("corrupted", "bad")):
        corpus_rate = hand[col].mean()
        for src in "abc":
            sub = hand.filter(pl.col("source") == src)
            n, k = sub.height, int(sub[col].sum())
            lo, hi = wilson(np.array([k]), np.array([n]))
            g = got[(src, issue)]
            assert g[:2] == (n, k)
            assert g[2] == pytest.approx(k / n) and g[5] == pytest.approx(k / n / corpus_rate)
            assert g[3] == pytest.approx(lo[0], abs=1e-9) and g[4] == pytest.approx(hi[0], abs=1e-9)
    hosts = dict(con.execute("SELECT \"group\", n_rows FROM issue_by_group WHERE group_col = 'url_host' "
                             "AND issue = 'corrupted'").fetchall())
    assert hosts == {f"{s}{x}.com": 10 for s in "abc" for x in "xy"}  # the url's host, www. dropped
    res = runner.invoke(app, ["summary", str(run)])
    assert res.exit_code == 0, res.output
    assert "worst groups per issue" in res.output and "source=b" in res.output and "source=c" in res.output
    assert "languages: en" in res.output
    from uimdata.report import render_report

    html = render_report(RunDir(run))
    assert "Issues by source" in html and "heat map of each issue" in html


def test_group_col_option(tmp_path):
    path, _ = _grouped(tmp_path)
    run = tmp_path / "run"
    _scan(path, run, "--group-col", "url")
    con = connect(RunDir(run))
    assert con.execute("SELECT DISTINCT group_col FROM issue_by_group").fetchall() == [("url",)]
    con.close()  # DuckDB shares an open database per path within a process
    _scan(path, run, "--group-col", "")
    assert connect(RunDir(run)).execute("SELECT count(*) FROM issue_by_group").fetchone()[0] == 0
    one_line_error(runner.invoke(app, ["scan", str(path), "-o", str(run), *FAST, "--group-col", "nope"]),
                   "--group-col 'nope'")


def test_lang_on_a_mixed_language_corpus(tmp_path):
    from importlib.resources import files

    ood = pl.read_parquet(str(files("uimdata") / "data" / "ood" / "ood.parquet"))
    glosses = pl.read_parquet(str(files("uimdata") / "data" / "wordnet" / "glosses.parquet"), columns=["text"])
    mix = pl.concat([ood.filter(pl.col("lang") == lg).head(50).select("text", "lang") for lg in ("de", "es", "it")]
                    + [glosses.head(50).with_columns(lang=pl.lit("en"))])
    emb = np.random.default_rng(2).normal(size=(mix.height, 8)).astype(np.float32).tolist()
    path = tmp_path / "mix.parquet"
    mix.rename({"lang": "truth"}).with_columns(embedding=pl.Series(emb)).write_parquet(path)
    run = tmp_path / "run"
    _scan(path, run)
    s = pl.read_parquet(run / "samples.parquet")
    for lg in ("en", "de", "es", "it"):
        sub = s.filter(pl.col("truth") == lg)
        assert (sub["lang"] == lg).mean() >= 0.85, (lg, sub["lang"].value_counts())
    assert s["lang_conf"].min() >= 0 and s["lang_conf"].max() <= 1
    con = connect(RunDir(run))
    langs = dict(con.execute("SELECT \"group\", n_rows FROM issue_by_group WHERE group_col = 'lang' "
                             "AND issue = 'corrupted'").fetchall())
    assert all(langs.get(lg, 0) >= 40 for lg in ("en", "de", "es", "it"))


def test_link_slices_by_a_corpus_column(tmp_path):
    """`uim link --slice-col source`: `source` is a corpus column, not a downstream one; its slices hold the
    corpus rows of each source and the downstream rows whose neighbours vote for it."""
    rng = np.random.default_rng(3)
    centre = np.eye(8, dtype=np.float32)
    n = 80
    src = ["a"] * (n // 2) + ["b"] * (n // 2)
    emb = np.stack([centre[0 if s == "a" else 1] + 0.1 * rng.normal(size=8) for s in src]).astype(np.float32)
    corpus = tmp_path / "c.parquet"
    pl.DataFrame({"text": [f"{s} text {i} {CLEAN[i % 30][0]}" for i, s in enumerate(src)], "source": src,
                  "embedding": emb.tolist()}).write_parquet(corpus)
    run = tmp_path / "run"
    _scan(corpus, run)
    m = 40
    near_b = np.arange(m) % 2 == 1
    demb = np.stack([centre[1 if b else 0] + 0.1 * rng.normal(size=8) for b in near_b]).astype(np.float32)
    correct = np.where(near_b, rng.random(m) < 0.2, rng.random(m) < 0.9)  # errors where the corpus is source b
    down = tmp_path / "dev.parquet"
    pl.DataFrame({"embedding": demb.tolist(), "correct": correct}).write_parquet(down)
    res = runner.invoke(app, ["link", str(run), str(down), "--slice-col", "source", "--min-down", "5"])
    assert res.exit_code == 0, res.output
    con = connect(RunDir(run))
    got = {r[0]: r[1:] for r in con.execute(
        "SELECT slice_id, kind, n_down, n_pre, error_rate FROM slices WHERE kind = 'source'").fetchall()}
    assert set(got) == {"source:a", "source:b"}
    assert got["source:b"][1:3] == (m // 2, n // 2) and got["source:a"][1:3] == (m // 2, n // 2)
    assert got["source:b"][3] > 0.5 > got["source:a"][3]
