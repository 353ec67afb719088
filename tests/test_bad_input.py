"""Bad input: each case either works as documented or stops with a one-line error naming the
file/column/row, and a failed scan never touches an earlier run directory."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from uimdata.cli import app

runner = CliRunner()


def scan(*args: str):
    return runner.invoke(app, ["scan", *args])


def one_line_error(res, *needles: str) -> str:
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], res.output  # one line, and the last one
    text = errors[0]
    for n in needles:
        assert n in text, f"{n!r} not in {text!r}"
    return text


def test_missing_file(tmp_path):
    one_line_error(scan(str(tmp_path / "nope.parquet"), "-o", str(tmp_path / "r")), "not found", "nope.parquet")


def test_unknown_format(tmp_path):
    f = tmp_path / "corpus.xlsx"
    f.write_bytes(b"PK\x03\x04")
    one_line_error(scan(str(f), "-o", str(tmp_path / "r")), "unknown corpus format", "corpus.xlsx", ".xlsx")


def test_no_text_column(tmp_path):
    f = tmp_path / "c.parquet"
    pl.DataFrame({"a": ["x", "y"], "b": ["z", "w"], "n": [1, 2]}).write_parquet(f)
    one_line_error(scan(str(f), "-o", str(tmp_path / "r")), "no text column", "--text-col", "['a', 'b', 'n']")


def test_wrong_text_col_named(tmp_path):
    f = tmp_path / "c.parquet"
    pl.DataFrame({"body2": ["x"]}).write_parquet(f)
    one_line_error(scan(str(f), "-o", str(tmp_path / "r"), "--text-col", "body"), "no column 'body'")


def test_text_column_not_text(tmp_path):
    f = tmp_path / "c.parquet"
    pl.DataFrame({"text": [1, 2]}).write_parquet(f)
    one_line_error(scan(str(f), "-o", str(tmp_path / "r")), "'text' is not text", "int64")


def test_non_utf8_bytes_error_names_line_and_replace_mode_works(tmp_path):
    f = tmp_path / "c.jsonl"
    good = json.dumps({"text": "a plain clean sentence about rivers"}).encode()
    f.write_bytes(good + b"\n" + b'{"text": "caf\xe9 au lait with warm milk"}\n')
    one_line_error(scan(str(f), "-o", str(tmp_path / "r")), "not valid UTF-8 at line 2", "--encoding-errors")
    res = scan(str(f), "-o", str(tmp_path / "r"), "--encoding-errors", "replace")
    assert res.exit_code == 0, res.output
    con = duckdb.connect(str(tmp_path / "r" / "uim.duckdb"), read_only=True)
    rule = con.execute("SELECT corrupted_rule FROM flags JOIN samples USING (id) WHERE text LIKE 'caf%'").fetchall()
    assert rule == [("mojibake",)]


def test_empty_whitespace_texts_and_null_labels_work(tmp_path):
    f = tmp_path / "c.parquet"
    pl.DataFrame({
        "text": ["a river that flows into the sea", "", "   \n ", None, "a tree with broad green leaves"],
        "label": ["x", None, "y", None, "z"],
    }).write_parquet(f)
    res = scan(str(f), "-o", str(tmp_path / "r"), "--k", "3")
    assert res.exit_code == 0, res.output
    con = duckdb.connect(str(tmp_path / "r" / "uim.duckdb"), read_only=True)
    rows = con.execute("SELECT s.row, f.is_corrupted_issue, f.corrupted_rule, f.is_exact_duplicate_issue "
                       "FROM samples s JOIN flags f USING (id) ORDER BY s.row").fetchall()
    assert [r[1] for r in rows] == [False, True, True, True, False]
    assert {r[2] for r in rows[1:4]} == {"empty"}
    assert not any(r[3] for r in rows), "empty texts are corrupted, not duplicates of each other"
    assert con.execute("SELECT count(*) FROM samples WHERE label IS NULL").fetchall()[0][0] == 2


def test_duplicate_ids(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("id,text\na,first text about cats\nb,second text about dogs\na,third text about birds\n")
    one_line_error(scan(str(f), "-o", str(tmp_path / "r")), "duplicate id 'a' at rows 0 and 2", "--id-col")


def test_derived_ids_are_stable_and_unique(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["same words here", "same words here", "other"]))
    for out in ("r1", "r2"):
        assert scan(str(f), "-o", str(tmp_path / out), "--k", "2").exit_code == 0
    ids = [duckdb.connect(str(tmp_path / o / "uim.duckdb"), read_only=True)
           .execute("SELECT id FROM samples ORDER BY row").fetchall() for o in ("r1", "r2")]
    assert ids[0] == ids[1]
    assert len({i for (i,) in ids[0]}) == 3 and ids[0][1][0] == ids[0][0][0] + "~2"


def test_single_row(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text(json.dumps({"text": "the only sentence in this corpus"}) + "\n")
    res = scan(str(f), "-o", str(tmp_path / "r"))
    assert res.exit_code == 0, res.output
    con = duckdb.connect(str(tmp_path / "r" / "uim.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM flags").fetchall()[0][0] == 1
    assert con.execute("SELECT count(*) FROM neighbors").fetchall()[0][0] == 0
    assert con.execute("SELECT count(*) FROM issues").fetchall()[0][0] == 0


def test_empty_corpus(tmp_path):
    f = tmp_path / "c.parquet"
    pl.DataFrame({"text": []}, schema={"text": pl.Utf8}).write_parquet(f)
    one_line_error(scan(str(f), "-o", str(tmp_path / "r")), "has no rows")


def test_one_megabyte_text(tmp_path):
    f = tmp_path / "c.parquet"
    words = np.random.default_rng(0).choice(["river", "stone", "light", "green", "north", "cloud", "seven",
                                             "paper", "quiet", "winter", "orange", "market"], 200_000)
    big = " ".join(words)[:1_000_000]
    pl.DataFrame({"text": [big, "a short ordinary sentence about a lake", "another plain line on hills"]}
                 ).write_parquet(f)
    res = scan(str(f), "-o", str(tmp_path / "r"), "--k", "2")
    assert res.exit_code == 0, res.output
    con = duckdb.connect(str(tmp_path / "r" / "uim.duckdb"), read_only=True)
    assert con.execute("SELECT max(n_chars) FROM samples").fetchall()[0][0] == 1_000_000


def test_embedding_of_wrong_dimension(tmp_path):
    f = tmp_path / "c.parquet"
    pl.DataFrame({"text": ["a", "b", "c"], "embedding": [[0.1, 0.2, 0.3], [0.3, 0.1, 0.2], [0.5, 0.5]]}
                 ).write_parquet(f)
    one_line_error(scan(str(f), "-o", str(tmp_path / "r")), "embedding at row 2 has 2 dimensions", "expected 3")


def test_embedding_with_nan(tmp_path):
    f = tmp_path / "c.parquet"
    pl.DataFrame({"text": ["a", "b"], "embedding": [[0.1, 0.2], [float("nan"), 0.1]]}).write_parquet(f)
    one_line_error(scan(str(f), "-o", str(tmp_path / "r")), "row 1", "NaN")


def test_failed_scan_leaves_earlier_run_untouched(tmp_path, clean_df):
    good = tmp_path / "good.parquet"
    clean_df.write_parquet(good)
    out = tmp_path / "run"
    assert scan(str(good), "-o", str(out), "--k", "3").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    bad = tmp_path / "bad.parquet"
    pl.DataFrame({"text": ["a", "b"], "id": ["x", "x"]}).write_parquet(bad)
    one_line_error(scan(str(bad), "-o", str(out)), "duplicate id")
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert before == after
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")], "staging dir left behind"


def test_unknown_detector(tmp_path, clean_df):
    good = tmp_path / "good.parquet"
    clean_df.write_parquet(good)
    one_line_error(scan(str(good), "-o", str(tmp_path / "r"), "--detectors", "exact_duplicate,typo"),
                   "unknown detector 'typo'")


@pytest.mark.parametrize("fmt", ["parquet_dir", "csv", "tsv", "hf"])
def test_other_formats_read(tmp_path, clean_df, fmt):
    df = clean_df.rename({"text": "content", "label": "category"})
    if fmt == "parquet_dir":
        path = tmp_path / "shards"
        path.mkdir()
        df.head(15).write_parquet(path / "part-0.parquet")
        df.tail(15).write_parquet(path / "part-1.parquet")
    elif fmt in ("csv", "tsv"):
        path = tmp_path / f"c.{fmt}"
        df.write_csv(path, separator="\t" if fmt == "tsv" else ",")
    else:
        import datasets
        path = tmp_path / "hf"
        datasets.Dataset.from_polars(df).save_to_disk(str(path))
    res = scan(str(path), "-o", str(tmp_path / "r"), "--k", "3", "--detectors", "exact_duplicate")
    assert res.exit_code == 0, res.output
    con = duckdb.connect(str(tmp_path / "r" / "uim.duckdb"), read_only=True)
    got = con.execute("SELECT id, text, label FROM samples ORDER BY row").fetchall()
    assert got == list(df.select("id", "content", "category").iter_rows())
