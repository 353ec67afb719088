"""The Python API (uimdata.scan / uimdata.open / Run): every input type, the same run as the CLI, planted
defects found through the API, link / curate / probe with in-memory frames, errors, temp-dir lifetime."""

from __future__ import annotations

import gc
import json
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import uimdata
from uimdata.cli import app
from uimdata.synth.space import concept_space

#: the light detectors: every input-type scan runs these (label and outlier run once, in ``base``)
LIGHT = ("exact_duplicate", "near_duplicate", "corrupted", "long_tail")
CORRUPT = "<div><script>alert(1)</script></div> &amp; &nbsp; <b>click here</b> &lt;"


def _corpus() -> tuple[pl.DataFrame, np.ndarray]:
    """258 labelled rows (8 classes) with embeddings: row ``dup`` copies ``r00000``; ``bad`` is markup."""
    df = concept_space(per_concept=8, row_spread=0.6).drop("concept")
    emb = np.stack(df["embedding"].to_numpy())
    df = df.drop("embedding")
    extra = pl.DataFrame({"id": ["dup", "bad"], "text": [df["text"][0], CORRUPT],
                          "label": [df["label"][0], "class_1"]})
    rng = np.random.default_rng(7)
    odd = rng.normal(size=emb.shape[1]).astype(np.float32)
    emb = np.vstack([emb, emb[0], odd / np.linalg.norm(odd)]).astype(np.float32)
    return pl.concat([df, extra]), emb


@pytest.fixture(scope="module")
def corpus() -> tuple[pl.DataFrame, np.ndarray]:
    return _corpus()


@pytest.fixture(scope="module")
def base(corpus, tmp_path_factory):
    """One scan with every detector (polars + numpy embeddings), shared by the read-side tests."""
    df, emb = corpus
    run = uimdata.scan(df, tmp_path_factory.mktemp("api") / "base", embedding=emb, progress=False)
    return run


@pytest.fixture(scope="module")
def light(corpus):
    """The reference for the input-type tests: polars frame with an embedding column, light detectors."""
    df, emb = corpus
    return uimdata.scan(df.with_columns(pl.Series("embedding", emb)), detectors=LIGHT, progress=False)


def _state(run: uimdata.Run) -> dict[str, pl.DataFrame]:
    return {"samples": run.samples().drop("source_file", strict=False), "flags": run.flags(),
            "neighbors": run.sql("SELECT id, rank, neighbor_id, round(cosine, 5) AS c FROM neighbors ORDER BY id, rank"),
            "summary": run.summary()}


def _same(a: uimdata.Run, b: uimdata.Run) -> None:
    sa, sb = _state(a), _state(b)
    for name in sa:
        assert sa[name].equals(sb[name]), name


# ------------------------------------------------------------------------------------------- inputs

def _inputs(df: pl.DataFrame, emb: np.ndarray) -> dict[str, object]:
    from datasets import Dataset

    with_emb = df.with_columns(pl.Series("embedding", emb))
    return {
        "pandas": with_emb.to_pandas(),
        "pyarrow": with_emb.to_arrow(),
        "datasets": Dataset.from_polars(with_emb),
        "dicts": [{**r, "embedding": e.tolist()} for r, e in zip(df.to_dicts(), emb)],
        "numpy": df,  # the embeddings passed as embedding=emb
    }


@pytest.mark.parametrize("kind", ["pandas", "pyarrow", "datasets", "dicts", "numpy"])
def test_every_input_type_gives_the_same_run(corpus, light, kind):
    df, emb = corpus
    data = _inputs(df, emb)[kind]
    run = uimdata.scan(data, detectors=LIGHT, progress=False, embedding=emb if kind == "numpy" else None)
    _same(light, run)
    # the planted rows are flagged whatever the input type
    flagged = run.issues()
    assert ("dup", "exact_duplicate") in set(zip(flagged["id"], flagged["issue"]))
    assert ("bad", "corrupted") in set(zip(flagged["id"], flagged["issue"]))


def test_datasets_selection_is_honoured(corpus):
    """A datasets.Dataset after select/shuffle is scanned as the user sees it, not its backing table."""
    from datasets import Dataset

    df, emb = corpus
    ds = Dataset.from_polars(df.with_columns(pl.Series("embedding", emb))).select(range(250, 258))
    run = uimdata.scan(ds, detectors=("exact_duplicate",), progress=False)
    assert run.samples()["id"].to_list() == df["id"][250:258].to_list()


def test_path_input_and_text_only_frames(tmp_path):
    """A path is read as `uim scan` reads it; a dict of columns and a pyarrow RecordBatch work too."""
    from tests.conftest import CLEAN, random_embeddings

    df = pl.DataFrame({"text": [t for t, _ in CLEAN], "label": [lab for _, lab in CLEAN]})
    emb = random_embeddings(df.height)
    df.with_columns(pl.Series("emb", emb)).write_parquet(tmp_path / "c.parquet")
    a = uimdata.scan(tmp_path / "c.parquet", detectors=("exact_duplicate",), progress=False)
    b = uimdata.scan({"text": df["text"].to_list(), "label": df["label"].to_list()}, embedding=emb,
                     detectors=("exact_duplicate",), progress=False)
    c = uimdata.scan(df.to_arrow().combine_chunks().to_batches()[0], str(tmp_path / "c-run"), embedding=emb,
                     detectors=("exact_duplicate",), progress=False)
    # ids are derived from the text: identical for all three
    assert a.samples()["id"].to_list() == b.samples()["id"].to_list() == c.samples()["id"].to_list()
    assert a.flags().equals(b.flags()) and b.flags().equals(c.flags())
    assert "label" in a.samples().columns and a.samples()["label"].to_list() == df["label"].to_list()


# ------------------------------------------------------------------------------------------- CLI = API

def _parquet_tables(run: Path) -> dict[str, pa.Table]:
    out = {}
    for p in sorted(run.rglob("*.parquet")):
        rel = str(p.relative_to(run))
        if rel != "input.parquet":
            out[rel] = pq.read_table(p)
    return out


def _db(run: Path) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        return {n: con.sql(f'SELECT * FROM "{n}"').pl() for n in sorted(names)}
    finally:
        con.close()


def _meta(run: Path) -> dict:
    meta = json.loads((run / "run.json").read_text())
    for key in ("started", "seconds", "timings", "peak_rss_mb", "files"):
        meta.pop(key, None)
    for key in ("corpus", "out"):
        meta["config"].pop(key, None)
    return meta


def test_cli_and_api_write_identical_run_directories(corpus, tmp_path):
    df, emb = corpus
    data = df.with_columns(pl.Series("embedding", emb))
    (tmp_path / "in").mkdir()
    corpus_file = tmp_path / "in" / "input.parquet"  # the name the API gives an in-memory corpus
    data.write_parquet(corpus_file)
    cli_run, api_run, path_run = tmp_path / "cli", tmp_path / "api", tmp_path / "path"
    res = CliRunner().invoke(app, ["scan", str(corpus_file), "-o", str(cli_run), "--detectors", ",".join(LIGHT)])
    assert res.exit_code == 0, res.output
    uimdata.scan(data, api_run, detectors=LIGHT, progress=False)
    uimdata.scan(corpus_file, path_run, detectors=list(LIGHT), progress=False)
    cli_files = {str(p.relative_to(cli_run)) for p in cli_run.rglob("*")}
    for run in (api_run, path_run):
        files = {str(p.relative_to(run)) for p in run.rglob("*")}
        # an in-memory corpus with its own embeddings is kept in the run: curate re-reads it
        assert files - cli_files <= {"input.parquet"} and cli_files <= files
        a, b = _parquet_tables(cli_run), _parquet_tables(run)
        assert a.keys() == b.keys()
        for name in a:
            assert a[name].equals(b[name]), name
        assert (cli_run / "detectors.jsonl").read_text() == (run / "detectors.jsonl").read_text()
        assert _meta(cli_run) == _meta(run)
        da, db = _db(cli_run), _db(run)
        assert da.keys() == db.keys()
        for name in da:
            assert da[name].equals(db[name]), name
    kept = api_run / "input.parquet"
    assert pl.read_parquet(kept).equals(data)
    assert json.loads((api_run / "run.json").read_text())["config"]["corpus"] == str(kept)


# ------------------------------------------------------------------------------------------- reading

def test_frames_are_polars_and_follow_the_contract(base):
    for df in (base.flags(), base.issues(), base.summary(), base.samples(), base.sql("SELECT 1 AS x"),
               base.neighbors("r00000"), base.examples("corrupted", 2), base.flags("label"), base.table("clusters")):
        assert isinstance(df, pl.DataFrame)
        assert isinstance(df.to_pandas(), pd.DataFrame)
    flags = base.flags()
    assert flags.height == base.n_rows == 258
    for issue in ("exact_duplicate", "near_duplicate", "corrupted", "label", "outlier", "long_tail"):
        assert {f"is_{issue}_issue", f"{issue}_score", f"{issue}_reason"} <= set(flags.columns)
    # the Datalab shape: get_issues("label") = id + that issue's columns (its extras included)
    lab = base.flags("label")
    assert lab.columns == ["id", "is_label_issue", "label_score", "label_reason", "suggested_label",
                           "suggested_label_prob"]
    assert base.flags("exact_duplicate").columns == ["id", "is_exact_duplicate_issue", "exact_duplicate_score",
                                                     "exact_duplicate_reason", "duplicate_of"]
    summ = base.summary()
    assert summ.columns == ["issue", "n_flagged", "fraction", "mean_score", "description"]
    assert base.sql("SELECT count(*) AS n FROM samples")["n"][0] == 258
    assert base.samples()["id"].to_list() == flags["id"].to_list()


def test_planted_defects_are_flagged(base):
    flags = base.flags()
    row = flags.filter(pl.col("id") == "dup").row(0, named=True)
    assert row["is_exact_duplicate_issue"] and row["duplicate_of"] == "r00000"
    assert flags.filter(pl.col("is_exact_duplicate_issue"))["id"].to_list() == ["dup"]
    bad = flags.filter(pl.col("id") == "bad").row(0, named=True)
    assert bad["is_corrupted_issue"] and bad["corrupted_rule"] == "markup"
    issues = base.issues("corrupted")
    assert issues.columns == ["id", "issue", "score", "reason"] and "bad" in issues["id"].to_list()
    assert (issues["issue"] == "corrupted").all()
    ex = base.examples("exact_duplicate", 5)
    assert ex["id"].to_list() == ["dup"] and ex["text"][0] == base.samples()["text"][0]
    assert {"exact_duplicate_score", "exact_duplicate_reason", "duplicate_of", "label"} <= set(ex.columns)
    # the label detector sees the planted wrong label of 'bad' (class_1 on a random vector) or none;
    # whatever it flags, its examples are sorted worst first
    lab = base.examples("label", 10)
    assert lab["label_score"].to_list() == sorted(lab["label_score"].to_list())
    nb = base.neighbors("dup")
    assert nb["rank"].to_list() == list(range(1, 11))
    assert nb["neighbor_id"][0] == "r00000" and nb["cosine"][0] == pytest.approx(1.0, abs=1e-5)
    assert nb["neighbor_text"][0] == base.samples()["text"][0] and "neighbor_label" in nb.columns


def test_repr_html_shows_the_summary_escaped(corpus, tmp_path):
    df, emb = corpus
    run = uimdata.scan(df.head(40), tmp_path / "<b>x&y</b>", embedding=emb[:40], detectors=("corrupted",),
                       progress=False)
    page = run._repr_html_()
    assert "<table>" in page and "<td>corrupted</td>" in page
    assert "<b>x&y</b>" not in page and "&lt;b&gt;x&amp;y&lt;/b&gt;" in page
    assert "corrupted" in repr(run) and "rows=40" in repr(run)


def test_open_reads_an_existing_run(base, tmp_path):
    again = uimdata.open(base.path)
    assert again.flags().equals(base.flags()) and not again.temporary
    with pytest.raises(uimdata.UimError, match="not found"):
        uimdata.open(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(uimdata.UimError, match="is not a run directory"):
        uimdata.open(tmp_path / "plain")


def test_temporary_run_lives_as_long_as_the_object(corpus):
    df, emb = corpus
    run = uimdata.scan(df.head(30), embedding=emb[:30], detectors=("exact_duplicate",), progress=False)
    path = run.path
    assert run.temporary and (path / "uim.duckdb").exists()
    del run
    gc.collect()
    assert not path.exists()
    with uimdata.scan(df.head(30), embedding=emb[:30], detectors=("exact_duplicate",), progress=False) as run:
        path = run.path
        assert path.exists()
    assert not path.exists()


# ------------------------------------------------------------------------------------------- errors

def test_errors_are_one_line_uim_errors(base, corpus, tmp_path):
    df, emb = corpus

    def err(fn, *match: str) -> str:
        with pytest.raises(uimdata.UimError) as e:
            fn()
        msg = str(e.value)
        assert "\n" not in msg
        for m in match:
            assert m in msg, msg
        return msg

    err(lambda: base.issues("nope"), "no issue 'nope'", "exact_duplicate", "corrupted")
    err(lambda: base.flags("inherited_label_bias"), "link(downstream) first")
    err(lambda: base.examples("nope"), "no issue 'nope'")
    err(lambda: base.neighbors("missing-id"), "no sample with id 'missing-id'", "'r00000'")
    err(lambda: base.sql("SELEC 1"), "query failed")
    err(lambda: base.sql("SELECT * FROM read_text('/etc/hostname')"), "allow_files=True")
    err(lambda: base.table("nope"), "no table 'nope'", "samples")
    err(lambda: base.manifest(), "has no curation")
    err(lambda: uimdata.scan(42), "cannot read data of type builtins.int", "polars")
    err(lambda: uimdata.scan([1, 2]), "row 0 of the list is not a dict")
    err(lambda: uimdata.scan([]), "has no rows")
    err(lambda: uimdata.scan(df, embedding=emb[:5]), "embedding has shape (5, 32)", "258")
    err(lambda: uimdata.scan(df, label_model="svm"), "--label-model", "ensemble, embedding, logreg, knn or text")
    err(lambda: uimdata.scan(df, colour="red"), "unknown option colour")
    err(lambda: uimdata.scan(df, embedding=emb, detectors="exact_duplicate,nope", progress=False), "nope")
    # column errors name the in-memory object, not a temporary file
    msg = err(lambda: uimdata.scan(df, text="body", embedding=emb, progress=False), "no column 'body'")
    assert "<polars.DataFrame>" in msg and ".parquet" not in msg
    # the CLI's output rules: an existing folder that is not a run is refused
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    err(lambda: uimdata.scan(df, tmp_path / "mine", embedding=emb, progress=False), "is not a run directory")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_progress_false_is_silent(corpus, capfd):
    df, emb = corpus
    uimdata.scan(df.head(30), embedding=emb[:30], detectors=("exact_duplicate",), progress=False)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    uimdata.scan(df.head(30), embedding=emb[:30], detectors=("exact_duplicate",))
    out, err = capfd.readouterr()
    assert "ingest" in err and "exact_duplicate" in err


# ------------------------------------------------------------------------------------------- link / curate / probe

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A labelled corpus in a synthetic space (given embeddings) with label noise and duplicates planted,
    a downstream dev split with the raw-trained probe's predictions, and a test split."""
    from tests.conftest import _predict
    from uimdata.synth import plant_exact_duplicates
    from uimdata.synth.labels import plant_label_noise

    train = concept_space(seed=0, per_concept=15, row_spread=0.6).drop("concept")
    train, noise = plant_label_noise(train, 0.05, 1, mode="uniform")
    train, dups = plant_exact_duplicates(train, 10, 2)
    train = train.with_columns(pl.Series("source", ["web" if i % 3 else "books" for i in range(train.height)]))
    down = concept_space(seed=1, per_concept=8, prefix="t", row_spread=0.6).drop("concept")
    down = down.with_columns(pl.Series("prediction", _predict(train, down)))
    test = concept_space(seed=2, per_concept=8, prefix="e", row_spread=0.6).drop("concept")
    run = uimdata.scan(train, tmp_path_factory.mktemp("world") / "run",
                       detectors=("exact_duplicate", "label", "long_tail"), label_model="knn", progress=False)
    return run, train, down, test, set(dups["id"])


def test_link_curate_probe_with_in_memory_frames(world, tmp_path):
    run, train, down, test, dups = world
    slices = run.link(down.to_pandas(), progress=False)  # a pandas frame as the downstream set
    assert isinstance(slices, pl.DataFrame) and {"slice_id", "rank", "lift", "n_down"} <= set(slices.columns)
    assert "inherited_label_bias" in run.issue_names()
    assert run.table("issue_attribution").height > 0
    assert run.sql("SELECT count(*) AS n FROM downstream")["n"][0] == down.height

    curated = run.curate("default")
    manifest = run.manifest()
    assert isinstance(curated, pl.DataFrame)
    assert manifest.height == train.height
    kept = manifest.filter(pl.col("action") != "dropped")
    assert curated["id"].to_list() == kept.sort("row")["id"].to_list()
    # one member of each planted duplicate pair survives (texts are otherwise distinct); the input's
    # other columns come along
    assert curated["text"].n_unique() == curated.height
    assert manifest.filter(pl.col("id").is_in(list(dups)) & (pl.col("action") == "dropped")).height >= 5
    assert {"id", "text", "label", "original_label", "weight", "source", "embedding"} <= set(curated.columns)
    assert (run.curated_path).name == "curated.parquet"

    out = tmp_path / "export"
    again = run.curate("conservative", out, format="jsonl")
    assert (out / "curated.jsonl").exists() and (out / "manifest.parquet").exists()
    assert again.height >= curated.height  # conservative keeps more than default

    # a list of dicts as the test split; 5 rows carry a label the corpus lacks: a Python warning
    odd = test.with_columns(pl.when(pl.int_range(pl.len()) < 5).then(pl.lit("class_99"))
                            .otherwise(pl.col("label")).alias("label"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = run.probe(odd.to_dicts(), policies=["default"], progress=False)
    assert any("class_99" in str(w.message) and "<list of dicts>" in str(w.message) for w in caught)
    assert isinstance(results, pl.DataFrame)
    assert set(results["policy"]) == {"raw", "default"}
    acc = results.filter(pl.col("metric") == "accuracy")
    assert acc["value"].is_between(0, 1).all() and (acc["n_eval"] == test.height).all()
    assert run.table("probe_results").height == results.height


def test_reopened_run_curates_from_the_kept_input(world):
    run, train, *_ = world
    again = uimdata.open(run.path)
    curated = again.curate("aggressive")
    assert "embedding" in curated.columns and "source" in curated.columns


def test_link_refuses_a_downstream_set_without_outcome(world):
    run, _, down, *_ = world
    with pytest.raises(uimdata.UimError, match="no model outcome") as e:
        run.link(down.drop("prediction"), progress=False)
    assert "<polars.DataFrame>" in str(e.value)
    with pytest.raises(uimdata.UimError, match="unknown option"):
        run.link(down, colour="red")


def test_report_writes_html(base, tmp_path):
    path = base.report(tmp_path / "r.html")
    assert path == tmp_path / "r.html" and "<html" in path.read_text()[:500].lower()


# ------------------------------------------------------------------------------------------- store

def test_publish_is_the_one_way_tables_reach_the_database(corpus, tmp_path):
    """store.publish writes RUN/tables/NAME.parquet and rebuilds uim.duckdb in DuckDB 1.0.0's storage
    format (file header version 64), keeping the recorded detectors; reads stay locked inside the run."""
    import struct

    from uimdata.rundir import RunDir
    from uimdata.store import publish, table_path

    df, emb = corpus
    run = uimdata.scan(df.head(40), tmp_path / "r", embedding=emb[:40], detectors=("exact_duplicate",),
                       progress=False)
    before, detectors = run.tables(), run.table("detectors")
    publish(RunDir(run.path), {"notes": pl.DataFrame({"id": ["a"], "n": [1]})})
    assert table_path(RunDir(run.path), "notes").exists()
    assert run.tables() == sorted([*before, "notes"])
    assert run.table("notes").to_dicts() == [{"id": "a", "n": 1}]
    assert run.table("detectors").equals(detectors) and run.summary()["issue"].to_list() == ["exact_duplicate"]
    header = (run.path / "uim.duckdb").read_bytes()[:20]
    assert header[8:12] == b"DUCK" and struct.unpack("<Q", header[12:20])[0] == 64
    with pytest.raises(uimdata.UimError, match="allow_files=True"):
        run.sql("SELECT * FROM read_text('/etc/hostname')")


def test_cli_runs_the_api(world, tmp_path):
    """`uim curate` / `uim probe` call the functions Run.curate / Run.probe call: same manifest, same
    results (the probe is deterministic), same one-line errors."""
    from uimdata.api import commands

    run, _, _, test, _ = world
    runner = CliRunner()
    res = runner.invoke(app, ["curate", str(run.path), "-o", str(tmp_path / "cli"), "--policy", "conservative"])
    assert res.exit_code == 0, res.output
    cli_manifest = pl.read_parquet(tmp_path / "cli" / "manifest.parquet")
    cur, target = commands.curate(run, "conservative", tmp_path / "api")
    assert cur.manifest.equals(cli_manifest) and target == tmp_path / "api" / "curated.parquet"
    test.write_parquet(tmp_path / "test.parquet")
    res = runner.invoke(app, ["probe", str(run.path), str(tmp_path / "test.parquet"), "--policy", "default"])
    assert res.exit_code == 0, res.output
    cli_results = run.table("probe_results")
    api_results = run.probe(tmp_path / "test.parquet", "default", progress=False)
    assert api_results.equals(cli_results)
    res = runner.invoke(app, ["probe", str(run.path), str(tmp_path / "test.parquet"), "--device", "tpu"])
    assert res.exit_code == 2 and res.output.startswith("error: --device")
    with pytest.raises(uimdata.UimError, match="^--device"):
        run.probe(tmp_path / "test.parquet", device="tpu")
