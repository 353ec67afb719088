"""End to end: `uim scan` on small real-text corpora, the DuckDB contract, query and summary."""

from __future__ import annotations

import json

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from tests.conftest import clean_frame, shared_cache_dir
from uimdata.cli import app

runner = CliRunner()

SAMPLES_COLS = {"id", "text", "label", "text_hash", "n_chars", "row"}
NEIGHBOR_COLS = {"id", "rank", "neighbor_id", "cosine", "row", "neighbor_row"}
ISSUES = ("exact_duplicate", "near_duplicate", "corrupted", "label", "long_tail")  # outlier: < 50 rows


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    return con.execute(sql).fetchall()[0]


def planted(clean_df: pl.DataFrame) -> pl.DataFrame:
    rows = clean_df.to_dicts()
    extra = [
        {"id": "x-exact", "text": rows[3]["text"], "label": rows[3]["label"]},
        {"id": "x-exact-case", "text": "  " + rows[8]["text"].upper(), "label": rows[8]["label"]},
        {"id": "x-near", "text": rows[5]["text"].replace("reproduces", "reprodcues") + " (botany)",
         "label": rows[5]["label"]},
        {"id": "x-near2", "text": rows[12]["text"].replace("taking quick", "taking very quick"),
         "label": rows[12]["label"]},
        {"id": "x-moji", "text": "café au lait: coffee with hot milk, served in a bowl".encode().decode("cp1252"),
         "label": "food"},
        {"id": "x-html", "text": "<div class=\"nav\"><a href=\"/home\">Home</a> | <script>var x=1;</script></div>",
         "label": "artifact"},
        {"id": "x-stub", "text": "n/a", "label": "food"},
    ]
    return pl.concat([clean_df, pl.DataFrame(extra)])


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """One scan of the planted corpus for the module; the tests that use it only read the run."""
    tmp = tmp_path_factory.mktemp("e2e")
    corpus = tmp / "corpus.jsonl"
    planted(clean_frame()).write_ndjson(corpus)
    out = tmp / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UIM_CACHE_DIR", shared_cache_dir(tmp_path_factory))
        res = runner.invoke(app, ["scan", str(corpus), "-o", str(out), "--k", "5"])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_scan_finds_planted_and_spares_clean(scanned):
    out, output = scanned
    con = duckdb.connect(str(out / "uim.duckdb"), read_only=True)
    flagged = {(i, s) for i, s in con.sql("SELECT id, issue FROM issues").fetchall()}
    assert ("x-exact", "exact_duplicate") in flagged
    assert ("x-exact-case", "exact_duplicate") in flagged
    assert ("x-near", "near_duplicate") in flagged
    assert ("x-near2", "near_duplicate") in flagged
    assert {("x-moji", "corrupted"), ("x-html", "corrupted"), ("x-stub", "corrupted")} <= flagged
    clean_flagged = {i for i, _ in flagged if i.startswith("c")}
    assert clean_flagged == set(), f"clean rows flagged: {clean_flagged}"
    dup_of = dict(con.sql("SELECT id, coalesce(duplicate_of, near_duplicate_of) FROM flags").fetchall())
    assert dup_of["x-exact"] == "c003" and dup_of["x-near"] == "c005" and dup_of["x-near2"] == "c012"
    clusters = dict(con.sql("SELECT id, duplicate_cluster FROM flags").fetchall())
    assert clusters["x-near"] == clusters["c005"] is not None
    assert clusters["c000"] is None
    assert "exact_duplicate" in output and "flagged" in output


def test_duckdb_schema_is_the_documented_contract(scanned):
    out, _ = scanned
    con = duckdb.connect(str(out / "uim.duckdb"), read_only=True)
    kinds = dict(con.sql("SELECT table_name, table_type FROM information_schema.tables").fetchall())
    assert kinds["samples"] == kinds["neighbors"] == kinds["flags"] == kinds["detectors"] == "BASE TABLE"
    assert kinds["issues"] == kinds["issue_summary"] == kinds["issue_scores"] == "VIEW"

    def cols(t: str) -> set[str]:
        return {r[0] for r in con.sql(f"DESCRIBE {t}").fetchall()}

    assert SAMPLES_COLS <= cols("samples")
    assert NEIGHBOR_COLS == cols("neighbors")
    flag_cols = cols("flags")
    for issue in ISSUES:
        assert {f"is_{issue}_issue", f"{issue}_score", f"{issue}_reason"} <= flag_cols
    assert {"duplicate_of", "near_duplicate_of", "duplicate_cluster", "corrupted_rule"} <= flag_cols
    assert cols("issues") == {"id", "issue", "score", "reason"}
    assert cols("issue_summary") == {"issue", "n_flagged", "fraction", "mean_score", "description"}
    n = one(con, "SELECT count(*) FROM samples")[0]
    assert n == one(con, "SELECT count(*) FROM flags")[0] == 37
    assert one(con, "SELECT count(*) FROM neighbors")[0] == n * 5
    lo, hi = one(con, "SELECT min(score), max(score) FROM issue_scores")
    assert 0.0 <= lo <= hi <= 1.0
    # reasons exactly on flagged rows
    assert one(con, "SELECT count(*) FROM issue_scores WHERE is_issue <> (reason IS NOT NULL)")[0] == 0
    summ = dict(con.sql("SELECT issue, n_flagged FROM issue_summary WHERE n_flagged > 0").fetchall())
    assert summ == dict(con.sql("SELECT issue, count(*) FROM issues GROUP BY issue").fetchall())
    meta = json.loads((out / "run.json").read_text())
    assert meta["rows"] == 37 and set(meta["timings"]) >= {"ingest", "embed", "index", "store"}


def test_query_formats(scanned, tmp_path):
    out, _ = scanned
    res = runner.invoke(app, ["query", str(out), "SELECT issue, n_flagged FROM issue_summary", "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0] == "issue,n_flagged"
    res = runner.invoke(app, ["query", str(out), "SELECT id FROM issues WHERE issue='corrupted'",
                              "--format", "json"])
    assert {json.loads(line)["id"] for line in res.output.splitlines()} == {"x-moji", "x-html", "x-stub"}
    target = tmp_path / "q.parquet"
    res = runner.invoke(app, ["query", str(out), "SELECT * FROM flags", "--format", "parquet", "-o", str(target)])
    assert res.exit_code == 0 and pl.read_parquet(target).height == 37
    res = runner.invoke(app, ["query", str(out), "SELECT nope FROM flags"])
    assert res.exit_code == 2 and "query failed" in res.output


def test_summary_shows_examples(scanned):
    out, _ = scanned
    res = runner.invoke(app, ["summary", str(out)])
    assert res.exit_code == 0, res.output
    assert "near_duplicate" in res.output and "x-html" in res.output
    assert "off_target: skipped, no reference set given" in res.output
    assert "skipped, None" not in res.output  # detectors that ran are not reported as skipped
    assert "label noise (confident joint" in res.output


def test_rescan_of_grown_corpus_embeds_only_new_rows(tmp_path, clean_df, monkeypatch):
    monkeypatch.setenv("UIM_CACHE_DIR", str(tmp_path / "own-cache"))
    corpus = tmp_path / "c.parquet"
    clean_df.head(20).write_parquet(corpus)
    assert runner.invoke(app, ["scan", str(corpus), "-o", str(tmp_path / "r1")]).exit_code == 0
    clean_df.write_parquet(corpus)  # grown by 10 rows
    res = runner.invoke(app, ["scan", str(corpus), "-o", str(tmp_path / "r2")])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "r2" / "run.json").read_text())
    assert meta["embedding"]["embedded"] == 10
    assert meta["embedding"]["from_cache"] == 20
    assert "embeddings: 20 rows from the embedding cache, 10 texts embedded" in res.output


def test_interrupted_embedding_keeps_finished_batches(tmp_path, clean_df, monkeypatch):
    from uimdata.stages.embed import EmbedStage

    monkeypatch.setenv("UIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(EmbedStage, "batch_size", 10)
    real = EmbedStage.process
    calls = {"n": 0}

    def dying(self, batch):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed in the middle of the second batch
        return real(self, batch)

    corpus = tmp_path / "c.parquet"
    clean_df.write_parquet(corpus)
    monkeypatch.setattr(EmbedStage, "process", dying)
    res = runner.invoke(app, ["scan", str(corpus), "-o", str(tmp_path / "run")])
    assert res.exit_code != 0 and not (tmp_path / "run").exists()
    monkeypatch.setattr(EmbedStage, "process", real)
    res = runner.invoke(app, ["scan", str(corpus), "-o", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["embedding"] == {"model": "all-MiniLM-L6-v2", "embedded": 20, "from_cache": 10}
