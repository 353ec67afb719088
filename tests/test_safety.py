"""Never destroy what the user did not ask to destroy; hostile text and SQL stay inert.

Each test plants the hazard (a folder of the user's files at -o, escape sequences in the corpus, SQL
that reaches for files, a full disk, ...) and asserts that nothing outside the tool's own output
changed and that the user got one `error:` line or literal output."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tests.conftest import CLEAN, random_embeddings
from tests.test_bad_input import one_line_error
from uimdata.cli import app
from uimdata.display import printable

runner = CliRunner()
FAST = ("--detectors", "exact_duplicate,near_duplicate,corrupted", "--k", "3")


def cli(*args: str, **kw):
    return runner.invoke(app, list(args), **kw)


def corpus(tmp_path: Path, texts: list[str] | None = None, name: str = "c.parquet",
           labels: list[str] | None = None) -> Path:
    texts = texts if texts is not None else [t for t, _ in CLEAN]
    df = pl.DataFrame({"id": [f"r{i:03d}" for i in range(len(texts))], "text": texts,
                       "embedding": random_embeddings(len(texts), 16).tolist()})
    if labels is not None:
        df = df.with_columns(pl.Series("label", labels))
    path = tmp_path / name
    df.write_parquet(path)
    return path


def snapshot(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- 1. -o never destroys

def test_out_refuses_a_folder_of_user_files(tmp_path):
    c = corpus(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    (mine / "sub").mkdir()
    (mine / "sub" / "data.csv").write_text("a,b\n1,2\n")
    before = snapshot(mine)
    one_line_error(cli("scan", str(c), "-o", str(mine), *FAST), "exists and is not a run directory", "run.json")
    assert snapshot(mine) == before


def test_out_refuses_the_input_itself_and_around_it(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    corpus(shards, name="part-0.parquet")
    before = snapshot(shards)
    # the corpus folder itself, a folder holding it, a folder inside it
    one_line_error(cli("scan", str(shards), "-o", str(shards), *FAST), "is or holds the input")
    one_line_error(cli("scan", str(shards), "-o", str(tmp_path), *FAST), "is or holds the input")
    one_line_error(cli("scan", str(shards), "-o", str(shards / "run"), *FAST), "inside the input folder")
    assert snapshot(shards) == before and not (shards / "run").exists()
    # -o naming the corpus file
    f = corpus(tmp_path)
    before = f.read_bytes()
    one_line_error(cli("scan", str(f), "-o", str(f), *FAST), "is or holds the input")
    assert f.read_bytes() == before
    # any existing file
    other = tmp_path / "notes.txt"
    other.write_text("keep me")
    one_line_error(cli("scan", str(f), "-o", str(other), *FAST), "exists and is not a run directory", "a file")
    assert other.read_text() == "keep me"


def test_out_dot_and_dotdot_are_one_line_errors(tmp_path, monkeypatch):
    f = corpus(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.txt").write_text("mine")
    monkeypatch.chdir(work)
    one_line_error(cli("scan", str(f), "-o", ".", *FAST), "-o . exists and is not a run directory")
    one_line_error(cli("scan", str(f), "-o", "..", *FAST), "-o .. is or holds the input")
    assert (work / "mine.txt").read_text() == "mine"


def test_rescan_keeps_what_the_user_put_in_the_run(tmp_path):
    c = corpus(tmp_path)
    run = tmp_path / "run"
    assert cli("scan", str(c), "-o", str(run), *FAST).exit_code == 0
    assert cli("report", str(run)).exit_code == 0
    res = cli("curate", str(run), "-o", str(run / "curated"))
    assert res.exit_code == 0, res.output
    (run / "notes.md").write_text("my notes")
    curated = snapshot(run / "curated")
    # an empty folder is fine too
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("scan", str(c), "-o", str(empty), *FAST).exit_code == 0 and (empty / "run.json").exists()
    res = cli("scan", str(c), "-o", str(run), *FAST)
    assert res.exit_code == 0, res.output
    assert (run / "notes.md").read_text() == "my notes"
    assert snapshot(run / "curated") == curated
    assert not (run / "report.html").exists(), "the report of the earlier scan is stale and goes"
    assert json.loads((run / "run.json").read_text())["uimdata"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.")], "no leftovers beside the run"


# ----------------------------------------------------------------------------- 2. terminal injection

HOSTILE = ("\x1b]0;pwned\x07\x1b[2J[bold red]RED[/] [link=https://evil.example]click[/link] "
           "\x1b]8;;https://evil.example\x1b\\osc8\x1b]8;;\x1b\\ \u202eevil")


def test_printable_escapes_every_control_and_bidi_character():
    out = printable(HOSTILE)
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b]0;pwned\\x07" in out and "\\u202e" in out and "[bold red]" in out
    assert printable("tab\there\nnew") == "tab\\there\\nnew"
    assert printable("a\nb", keep_newlines=True) == "a\nb"
    assert printable("naïve café 東京 😀") == "naïve café 東京 😀"


def test_data_reaches_the_terminal_literally(tmp_path):
    texts = [t for t, _ in CLEAN] + [HOSTILE, HOSTILE]  # a duplicate, so it shows in the worst examples
    c = corpus(tmp_path, texts)
    pl.read_parquet(c).with_columns(pl.Series("id", [*map(str, range(len(texts) - 1)), "[bold]id[/bold]"])) \
        .write_parquet(c)
    run = tmp_path / "run"
    assert cli("scan", str(c), "-o", str(run), *FAST).exit_code == 0
    for args in (["query", str(run), "SELECT id, text FROM samples"],
                 ["query", str(run), "SELECT id, text FROM samples", "--format", "csv"],
                 ["query", str(run), "SELECT id, text FROM samples", "--format", "json"],
                 ["summary", str(run)]):
        res = cli(*args, env={"COLUMNS": "400"})
        assert res.exit_code == 0, res.output
        assert "\x1b" not in res.output and "\x07" not in res.output and "\u202e" not in res.output, args
        if args[-1] != "json":
            assert "[bold red]RED[/]" in res.output.replace("\n", ""), args
    res = cli("query", str(run), "SELECT id FROM samples WHERE id LIKE '[%'")
    assert "[bold]id[/bold]" in res.output
    # error messages quoting data are literal too
    res = cli("scan", str(c), "-o", str(tmp_path / "r2"), "--text-col", "[red]\x1b[2Jx")
    text = one_line_error(res, "no column '[red]\\x1b[2Jx'")
    assert "\x1b" not in text


# ----------------------------------------------------------------------------- 4. SQL stays inside the run

def test_query_cannot_reach_files_unless_allowed(tmp_path):
    c = corpus(tmp_path)
    run = tmp_path / "run"
    assert cli("scan", str(c), "-o", str(run), *FAST).exit_code == 0
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    target = tmp_path / "written.csv"
    for sql in (f"SELECT * FROM read_text('{secret}')", f"SELECT * FROM glob('{tmp_path}/*')",
                f"COPY (SELECT * FROM samples) TO '{target}'", f"ATTACH '{tmp_path / 'x.db'}' AS x",
                "INSTALL httpfs", "SET enable_external_access = true"):
        res = cli("query", str(run), sql)
        text = one_line_error(res, "query failed")
        assert "top secret" not in res.output, sql
        assert "--allow-files" in text or "locked" in text, (sql, text)
    assert not target.exists() and not (tmp_path / "x.db").exists()
    res = cli("query", str(run), f"SELECT content FROM read_text('{secret}')", "--allow-files", "--format", "csv")
    assert res.exit_code == 0 and "top secret" in res.output
    # the database itself stays read-only either way
    one_line_error(cli("query", str(run), "DELETE FROM samples", "--allow-files"), "query failed", "read-only")
    assert cli("report", str(run)).exit_code == 0  # the report's SQL runs under the same lock


# ----------------------------------------------------------------------------- 5. empty texts

def test_empty_texts_belong_to_no_duplicate_cluster(tmp_path):
    texts = [t for t, _ in CLEAN[:20]] + ["", "   ", "\n\t", CLEAN[0][0]]
    c = corpus(tmp_path, texts)
    run = tmp_path / "run"
    assert cli("scan", str(c), "-o", str(run), *FAST).exit_code == 0
    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    rows = dict(con.execute("SELECT s.row, f.duplicate_cluster FROM samples s JOIN flags f USING (id)").fetchall())
    assert rows[20] is None and rows[21] is None and rows[22] is None
    assert rows[0] is not None and rows[0] == rows[23], "the real copy still forms a cluster"
    assert cli("curate", str(run), "-o", str(tmp_path / "cur")).exit_code == 0
    man = pl.read_parquet(tmp_path / "cur" / "manifest.parquet").sort("row")
    for r in man.filter(pl.col("row").is_in([20, 21, 22])).iter_rows(named=True):
        assert r["action"] == "dropped" and r["issue"] == "corrupted" and "duplicate" not in r["reason"]


# ----------------------------------------------------------------------------- 6. one line, never a traceback

@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_full_disk_or_read_only_output_is_one_line(tmp_path, monkeypatch, code):
    c = corpus(tmp_path)
    run = tmp_path / "run"
    assert cli("scan", str(c), "-o", str(run), *FAST).exit_code == 0
    before = snapshot(run)
    import pyarrow.parquet as pq

    real = pq.write_table

    def failing(table, where, *a, **kw):
        if str(tmp_path) in str(where):
            raise OSError(code, os.strerror(code), str(where))
        return real(table, where, *a, **kw)

    monkeypatch.setattr(pq, "write_table", failing)
    one_line_error(cli("scan", str(c), "-o", str(run), *FAST), os.strerror(code), f"errno {code}")
    assert snapshot(run) == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_curate_on_a_read_only_run_leaves_no_partial_output(tmp_path, monkeypatch):
    c = corpus(tmp_path)
    run = tmp_path / "run"
    assert cli("scan", str(c), "-o", str(run), *FAST).exit_code == 0
    before = snapshot(run)
    real = tempfile.mkstemp

    def read_only_run(*a, **kw):
        if str(kw.get("dir", "")).startswith(str(run)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(kw.get("dir")))
        return real(*a, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", read_only_run)
    out = tmp_path / "cur"
    one_line_error(cli("curate", str(run), "-o", str(out)), "cannot write to the run directory", "Read-only")
    assert not out.exists() or not any(out.iterdir()), "no partial export"
    assert snapshot(run) == before


def test_device_cuda_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the refusal cannot be observed")
    c = corpus(tmp_path)
    one_line_error(cli("scan", str(c), "-o", str(tmp_path / "r"), "--device", "cuda"), "no CUDA device",
                   "--device cpu")
    one_line_error(cli("scan", str(c), "-o", str(tmp_path / "r"), "--device", "tpu"), "--device", "'tpu'")


def test_csv_with_list_columns_and_all_detectors_skipped(tmp_path):
    c = corpus(tmp_path)
    run = tmp_path / "run"
    res = cli("scan", str(c), "-o", str(run), "--detectors", "off_target")
    assert res.exit_code == 0, res.output
    assert "off_target: skipped" in res.output
    res = cli("query", str(run), "SELECT count(*) AS n FROM issue_scores", "--format", "csv")
    assert res.exit_code == 0 and res.output.split() == ["n", "0"]
    assert cli("summary", str(run)).exit_code == 0
    assert cli("report", str(run)).exit_code == 0
    res = cli("query", str(run), "SELECT id, [1, 2] AS xs, {'a': 1} AS s FROM samples ORDER BY row LIMIT 2",
              "--format", "csv")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[1] == 'r000,"[1, 2]","{""a"": 1}"'


# ----------------------------------------------------------------------------- 7. silent nonsense

def test_link_and_probe_with_labels_the_corpus_does_not_have(tmp_path):
    labels = [lab for _, lab in CLEAN]
    c = corpus(tmp_path, labels=labels)
    run = tmp_path / "run"
    assert cli("scan", str(c), "-o", str(run), "--detectors", "exact_duplicate", "--k", "3").exit_code == 0
    emb = random_embeddings(40, 16, seed=3)
    down = tmp_path / "down.parquet"
    pl.DataFrame({"text": [f"t{i}" for i in range(40)], "embedding": emb.tolist(),
                  "label": [f"other{i % 4}" for i in range(40)],
                  "prediction": [f"other{i % 3}" for i in range(40)]}).write_parquet(down)
    one_line_error(cli("probe", str(run), str(down)), "share no class with the corpus", "4 other label(s)")
    res = cli("link", str(run), str(down))
    assert res.exit_code == 0, res.output
    assert "warning:" in res.output and "40 of its 40 labelled rows" in res.output
    # a small overlap: a warning with the count, and the run goes on
    mixed = tmp_path / "mixed.parquet"
    pl.read_parquet(down).with_columns(pl.Series("label", ["animal"] * 30 + ["other"] * 10)).write_parquet(mixed)
    res = cli("probe", str(run), str(mixed), "--policy", "default", "--allow-leak")
    assert res.exit_code == 0, res.output
    assert "10 of its 40 labelled rows" in res.output and "'other'" in res.output


def test_toml_policy_errors_name_the_table(tmp_path):
    c = corpus(tmp_path, labels=[lab for _, lab in CLEAN])
    run = tmp_path / "run"
    assert cli("scan", str(c), "-o", str(run), *FAST).exit_code == 0
    pol = tmp_path / "pol.toml"
    pol.write_text('[label]\nacton = "drop"\n')
    one_line_error(cli("curate", str(run), "-o", str(tmp_path / "o"), "--policy", str(pol)),
                   "pol.toml: [label]: unknown key 'acton'")
    pol.write_text('acton = "drop"\n')
    one_line_error(cli("curate", str(run), "-o", str(tmp_path / "o"), "--policy", str(pol)),
                   "unknown top-level key 'acton'")


def test_curate_refuses_to_write_into_the_corpus(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    corpus(shards, name="part-0.parquet")
    run = tmp_path / "run"
    assert cli("scan", str(shards), "-o", str(run), *FAST).exit_code == 0
    before = snapshot(shards)
    one_line_error(cli("curate", str(run), "-o", str(shards / "curated")), "overlaps the run's corpus")
    assert snapshot(shards) == before


# ----------------------------------------------------------------------------- 8. older DuckDB clients

OLD_DUCKDB = Path(sys.prefix) / "duckdb-1.1.3"


def test_run_database_opens_in_duckdb_1_1_3(tmp_path):
    if not (OLD_DUCKDB / "duckdb").is_dir():
        pytest.fail(f"DuckDB 1.1.3 is not installed at {OLD_DUCKDB}; `make venv` installs it")
    c = corpus(tmp_path, labels=[lab for _, lab in CLEAN])
    run = tmp_path / "run"
    assert cli("scan", str(c), "-o", str(run), *FAST).exit_code == 0
    assert cli("curate", str(run), "-o", str(tmp_path / "cur")).exit_code == 0  # the db is rebuilt by curate
    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
    expected = {n: con.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for n in names}
    con.close()
    code = ("import duckdb, json, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
            "print(json.dumps([duckdb.__version__, {n: con.execute(f'SELECT count(*) FROM {n}').fetchone()[0] "
            "for n in json.loads(sys.argv[2])}]))")
    proc = subprocess.run([sys.executable, "-c", code, str(run / "uim.duckdb"), json.dumps(names)],
                          env={**os.environ, "PYTHONPATH": str(OLD_DUCKDB)}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    version, counts = json.loads(proc.stdout)
    assert version == "1.1.3"
    assert {"samples", "flags", "neighbors", "issues", "issue_summary", "curation"} <= set(counts)
    assert counts == expected and counts["samples"] == len(CLEAN)
    assert np.isfinite(list(counts.values())).all()


def test_printable_json_stays_the_same_json():
    from uimdata.display import printable_json

    line = json.dumps({"t": HOSTILE + "\x7f\x85"}, ensure_ascii=False)
    safe = printable_json(line + "\n" + line)
    assert "\x1b" not in safe and "\u202e" not in safe and "\x85" not in safe
    assert [json.loads(x)["t"] for x in safe.split("\n")] == [HOSTILE + "\x7f\x85"] * 2


def test_report_replaces_only_its_own_file(tmp_path):
    c = corpus(tmp_path)
    run = tmp_path / "run"
    assert cli("scan", str(c), "-o", str(run), *FAST).exit_code == 0
    before = c.read_bytes()
    one_line_error(cli("report", str(run), "-o", str(c)), "exists and is not a uimdata report")
    assert c.read_bytes() == before
    one_line_error(cli("report", str(run), "-o", str(tmp_path)), "is a folder")
    mine = tmp_path / "mine.html"
    assert cli("report", str(run), "-o", str(mine)).exit_code == 0
    assert cli("report", str(run), "-o", str(mine)).exit_code == 0, "its own report is replaced"


def test_a_scan_with_no_detector_at_all(tmp_path):
    from uimdata.scan import ScanConfig, scan

    c = corpus(tmp_path)
    scan(ScanConfig(corpus=str(c), out=str(tmp_path / "run"), detectors=()))
    res = cli("query", str(tmp_path / "run"), "SELECT (SELECT count(*) FROM detectors) AS d, "
              "(SELECT count(*) FROM issues) AS i, (SELECT count(*) FROM samples) AS s", "--format", "csv")
    assert res.exit_code == 0 and res.output.split() == ["d,i,s", f"0,0,{len(CLEAN)}"], res.output
