"""Many files per corpus: a directory or glob mixing parquet, jsonl, .jsonl.gz, .jsonl.zst and csv is
one corpus; each file's columns are resolved on their own and must fill the same roles; every row
records its source_file and run.json counts the rows of each file."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.conftest import CLEAN
from tests.test_bad_input import one_line_error
from uimdata.cli import app
from uimdata.rundir import RunDir
from uimdata.store import connect

runner = CliRunner()
FAST = ("--detectors", "exact_duplicate,corrupted", "--k", "3")


def _emb(n: int, seed: int) -> list[list[float]]:
    return np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32).tolist()


def _texts(n: int, tag: str) -> list[str]:
    return [f"{tag} document {i}: {CLEAN[i % len(CLEAN)][0]}" for i in range(n)]


def test_shard_with_another_text_column_keeps_its_text(tmp_path):
    """The reliability issue: a parquet directory whose second shard says `content` instead of `text`
    was read with 100 empty texts (then flagged corrupted and dropped by curate). Now each shard's
    columns are resolved on their own: no text is lost, nothing is flagged."""
    d = tmp_path / "shards"
    d.mkdir()
    a, b = _texts(100, "first"), _texts(100, "second")
    pq.write_table(pa.table({"text": a, "embedding": _emb(100, 0)}), d / "part-0.parquet")
    pq.write_table(pa.table({"content": b, "embedding": _emb(100, 1)}), d / "part-1.parquet")
    res = runner.invoke(app, ["scan", str(d), "-o", str(tmp_path / "run"), *FAST])
    assert res.exit_code == 0, res.output
    con = connect(RunDir(tmp_path / "run"))
    texts = [r[0] for r in con.execute("SELECT text FROM samples ORDER BY row").fetchall()]
    assert texts == a + b
    assert con.execute("SELECT count(*) FROM flags WHERE is_corrupted_issue").fetchone()[0] == 0
    files = json.loads((tmp_path / "run" / "run.json").read_text())["files"]
    assert [(f["source_file"], f["rows"], f["columns"]["text"]) for f in files] == [
        ("part-0.parquet", 100, "text"), ("part-1.parquet", 100, "content")]
    by_file = con.execute("SELECT source_file, count(*) FROM samples GROUP BY 1 ORDER BY 1").fetchall()
    assert by_file == [("part-0.parquet", 100), ("part-1.parquet", 100)]


def _two_shards(tmp_path, second: pa.Table):
    d = tmp_path / "shards"
    d.mkdir()
    pq.write_table(pa.table({"text": _texts(20, "a"), "embedding": _emb(20, 0)}), d / "part-0.parquet")
    pq.write_table(second, d / "part-1.parquet")
    return d


def test_shard_that_fills_other_roles_stops_the_scan_naming_it(tmp_path):
    run = tmp_path / "run"
    # no embedding column in the second shard: it would be embedded by another model than the first
    d = _two_shards(tmp_path, pa.table({"content": _texts(20, "b"), "source": ["x"] * 20}))
    text = one_line_error(runner.invoke(app, ["scan", str(d), "-o", str(run), *FAST]),
                          "part-1.parquet", "other roles", "part-0.parquet", "['content', 'source']")
    assert "embedding=embedding" in text and not run.exists()


def test_shard_without_a_text_column_names_the_file(tmp_path):
    d = _two_shards(tmp_path, pa.table({"a": ["x"] * 3, "b": ["y"] * 3, "embedding": _emb(3, 2)}))
    one_line_error(runner.invoke(app, ["scan", str(d), "-o", str(tmp_path / "run"), *FAST]),
                   "part-1.parquet", "no text column", "['a', 'b', 'embedding']")


def test_named_text_column_must_exist_in_every_file(tmp_path):
    d = _two_shards(tmp_path, pa.table({"content": _texts(5, "b"), "embedding": _emb(5, 2)}))
    one_line_error(runner.invoke(app, ["scan", str(d), "-o", str(tmp_path / "run"), "--text-col", "text", *FAST]),
                   "part-1.parquet", "no column 'text'", "['content', 'embedding']")


def _rows(tag: str, n: int, seed: int, **extra) -> list[dict]:
    return [{"text": t, "source": tag, "embedding": e, **extra} for t, e in zip(_texts(n, tag), _emb(n, seed))]


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def test_mixed_folder_with_compressed_jsonl_is_one_corpus(tmp_path):
    d = tmp_path / "mix"
    (d / "web" / "2024").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(_rows("books", 4, 0)), d / "books.parquet")
    (d / "plain.jsonl").write_bytes(_jsonl(_rows("plain", 3, 1)))
    (d / "web" / "2024" / "crawl.jsonl.gz").write_bytes(gzip.compress(_jsonl(_rows("web", 5, 2, url="http://a.org/x"))))
    with pa.CompressedOutputStream(str(d / "code.jsonl.zst"), "zstd") as f:
        f.write(_jsonl(_rows("code", 6, 3)))
    (d / "README.md").write_text("not a corpus file")            # skipped: not a corpus format
    (d / ".hidden.jsonl").write_bytes(_jsonl(_rows("hidden", 2, 4)))  # skipped: hidden
    run = tmp_path / "run"
    res = runner.invoke(app, ["scan", str(d), "-o", str(run), *FAST])
    assert res.exit_code == 0, res.output
    meta = json.loads((run / "run.json").read_text())
    assert {f["source_file"]: (f["rows"], f["format"]) for f in meta["files"]} == {
        "books.parquet": (4, "parquet"), "code.jsonl.zst": (6, "jsonl.zstd"), "plain.jsonl": (3, "jsonl"),
        "web/2024/crawl.jsonl.gz": (5, "jsonl.gzip")}
    assert meta["rows"] == 18
    con = connect(RunDir(run))
    got = con.execute("SELECT source_file, source, text, url FROM samples ORDER BY row").fetchall()
    assert {(f, s) for f, s, _, _ in got} == {("books.parquet", "books"), ("code.jsonl.zst", "code"),
                                              ("plain.jsonl", "plain"), ("web/2024/crawl.jsonl.gz", "web")}
    assert all(t.startswith(f"{s} document") for _, s, t, _ in got)
    assert [u for f, _, _, u in got if f.endswith(".gz")] == ["http://a.org/x"] * 5
    assert {u for f, _, _, u in got if not f.endswith(".gz")} == {None}  # a column a file lacks is null there
    assert set(meta["group_cols"]) >= {"source", "source_file", "url_host"}


def test_csv_and_jsonl_mixed_and_a_glob(tmp_path):
    """Text-only files mixed (embedded by the model: 9 short texts), and the same files named by a glob."""
    d = tmp_path / "mix"
    d.mkdir()
    (d / "a.csv").write_text("text,source\n" + "".join(f'"{t}",csv\n' for t in _texts(4, "c")))
    (d / "b.jsonl.gz").write_bytes(gzip.compress(_jsonl([{"text": t, "source": "gz"} for t in _texts(5, "g")])))
    (d / "c.parquet").write_bytes(b"")  # an empty, unreadable shard is an error naming it
    one_line_error(runner.invoke(app, ["scan", str(d), "-o", str(tmp_path / "bad"), *FAST]), "c.parquet")
    (d / "c.parquet").unlink()
    run = tmp_path / "run"
    res = runner.invoke(app, ["scan", str(d / "*.*"), "-o", str(run), *FAST])
    assert res.exit_code == 0, res.output
    meta = json.loads((run / "run.json").read_text())
    assert [(f["source_file"], f["rows"]) for f in meta["files"]] == [("a.csv", 4), ("b.jsonl.gz", 5)]
    rows = connect(RunDir(run)).execute("SELECT source_file, source FROM samples ORDER BY row").fetchall()
    assert rows == [("a.csv", "csv")] * 4 + [("b.jsonl.gz", "gz")] * 5


@pytest.mark.parametrize("name, body", [("c.jsonl.gz", b"this is not gzip"), ("c.jsonl.zst", b"nor zstd")])
def test_broken_compressed_file_is_one_line(tmp_path, name, body):
    f = tmp_path / name
    f.write_bytes(body)
    one_line_error(runner.invoke(app, ["scan", str(f), "-o", str(tmp_path / "run"), *FAST]),
                   "cannot decompress", name)


def test_glob_matching_nothing_is_one_line(tmp_path):
    one_line_error(runner.invoke(app, ["scan", str(tmp_path / "*.jsonl.gz"), "-o", str(tmp_path / "run")]),
                   "no corpus files match")


def test_metadata_types_combine_across_files_or_stop_naming_the_column(tmp_path):
    d = tmp_path / "shards"
    d.mkdir()
    cat = pa.array(["web", "web", "books"]).dictionary_encode()  # a categorical in one file, text in the other
    pq.write_table(pa.table({"text": _texts(3, "a"), "source": cat, "n": [1, 2, 3], "embedding": _emb(3, 0)}),
                   d / "part-0.parquet")
    pq.write_table(pa.table({"text": _texts(2, "b"), "source": ["code", None], "n": [0.5, None],
                             "embedding": _emb(2, 1)}), d / "part-1.parquet")
    run = tmp_path / "run"
    res = runner.invoke(app, ["scan", str(d), "-o", str(run), *FAST])
    assert res.exit_code == 0, res.output
    rows = connect(RunDir(run)).execute("SELECT source, n FROM samples ORDER BY row").fetchall()
    assert rows == [("web", 1.0), ("web", 2.0), ("books", 3.0), ("code", 0.5), (None, None)]  # int + float -> float
    pq.write_table(pa.table({"text": _texts(2, "c"), "source": [1, 2], "n": [1, 2], "embedding": _emb(2, 2)}),
                   d / "part-2.parquet")
    one_line_error(runner.invoke(app, ["scan", str(d), "-o", str(tmp_path / "run2"), *FAST]),
                   "metadata column 'source'", "--drop-cols source")


def test_read_tasks_give_the_batches_the_driver_reads(tmp_path):
    """What a worker reads for itself (row-group runs of parquet files, ``read_task``) is what
    ``CorpusReader.batches`` reads in the driver: same columns, row numbers, files and metadata, also when
    the files name their columns differently and one holds a categorical column and several row groups."""
    from uimdata.stages.ingest import CorpusReader, read_task

    d = tmp_path / "corpus"
    d.mkdir()
    rng = np.random.default_rng(0)
    n = 700
    a = pa.table({"text": [f"row {i} about rivers" for i in range(n)], "label": [f"c{i % 3}" for i in range(n)],
                  "lang_src": pa.array([["en", "de"][i % 2] for i in range(n)]).dictionary_encode(),
                  "embedding": pa.FixedSizeListArray.from_arrays(pa.array(rng.random(n * 4), pa.float32()), 4)})
    pq.write_table(a, d / "a.parquet", row_group_size=100)
    b = pa.table({"content": ["a later file's text", "and its second row"], "label": ["c1", "c2"],
                  "score": [0.5, 0.7], "embedding": pa.FixedSizeListArray.from_arrays(pa.array(rng.random(8), pa.float32()), 4)})
    pq.write_table(b, d / "b.parquet")
    pq.write_table(b.slice(0, 0), d / "c.parquet")  # an empty file is read and adds nothing
    driver = CorpusReader(str(d), batch_size=128)
    want = pa.concat_tables(list(driver.batches()), promote_options="permissive")
    workers = CorpusReader(str(d), batch_size=128)
    tasks = workers.read_tasks(task_rows=250)
    assert [t.groups for t in tasks] == [(0, 1, 2), (3, 4, 5), (6,), (0,)]
    assert all(len(part) <= 128 for t in tasks for part in read_task(t))
    got = pa.concat_tables([p for t in tasks for p in read_task(t)], promote_options="permissive")
    assert got.equals(want)
    assert workers.metadata == driver.metadata and workers.columns == driver.columns
    assert [(i.source_file, i.rows, i.columns) for i in workers.info] == [(i.source_file, i.rows, i.columns) for i in driver.info]
    (d / "notes.jsonl").write_text(json.dumps({"text": "x"}) + "\n")
    assert CorpusReader(str(d)).read_tasks() is None  # not every file parquet: the driver reads
