"""`uim report`: one self-contained HTML file, checked in headless Chromium (no network, no script,
hostile corpus text shown literally) and section by section on fake `uim link` / `uim probe` tables."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from uimdata.cli import app
from uimdata.executors.local import LocalExecutor
from uimdata.report import render_report
from uimdata.rundir import RunDir
from uimdata.scan import ScanConfig, scan

DEMO = Path("uimdata/data/demo")
ARTIFACTS = Path(os.environ.get("UIM_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))
CHROMIUM = os.environ.get("UIM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SECTIONS = ["overview", "issues", "examples", "classes", "map", "label-noise"]
OPTIONAL = ["slices", "attribution", "probe"]
SCRIPT = "<script>window.__pwned = 1; alert(1)</script> click here to subscribe"
IMG = '<img src=x onerror="window.__pwned = 2; alert(2)"> see our newsletter'
HOSTILE_LABEL = "<img src=y onerror=alert(3)> $\\frac{"
runner = CliRunner()


def demo_like_corpus(seed: int = 0) -> pl.DataFrame:
    """~300 demo rows with planted duplicates, corrupted texts, label flips, a long tail (one tail class
    with a hostile, mathtext-breaking name), hostile texts, and precomputed embeddings (no model)."""
    rng = np.random.default_rng(seed)
    corpus = pl.read_parquet(DEMO / "corpus.parquet")
    truth = pl.read_parquet(DEMO / "truth.parquet")
    clean = corpus.join(truth, on="id", how="anti")
    head = ["adj.all", "noun.artifact", "noun.person", "noun.plant", "noun.animal", "noun.act"]
    parts = [clean.filter(pl.col("label") == lab).head(40) for lab in head]
    parts += [clean.filter(pl.col("label") == lab).head(4) for lab in ("noun.feeling", "verb.emotion")]
    parts.append(clean.filter(pl.col("label") == "verb.weather").head(3).with_columns(label=pl.lit(HOSTILE_LABEL)))
    base = pl.concat(parts)
    labels = sorted(set(base["label"]))
    centres = rng.normal(size=(len(labels), 32))
    emb = centres[[labels.index(lab) for lab in base["label"]]] + 0.35 * rng.normal(size=(base.height, 32))
    texts, labs, vecs = base["text"].to_list(), base["label"].to_list(), list(emb)
    for i in rng.choice(base.height, 8, replace=False):  # exact and near copies
        texts += [texts[i], texts[i][:-1] + " ."]
        labs += [labs[i]] * 2
        vecs += [vecs[i], vecs[i] + 0.01 * rng.normal(size=32)]
    for i in rng.choice(240, 8, replace=False):  # label flips inside the head classes
        labs[i] = head[(head.index(labs[i]) + 1) % len(head)]
    bad = corpus.join(truth.filter(pl.col("defect") == "corrupted"), on="id").head(12)
    texts += bad["text"].to_list() + [SCRIPT, IMG]
    labs += [head[i % len(head)] for i in range(bad.height + 2)]
    vecs += list(rng.normal(size=(bad.height + 2, 32)))
    x = np.asarray(vecs, dtype=np.float32)
    return pl.DataFrame({"id": [f"t{i:04d}" for i in range(len(texts))], "text": texts, "label": labs,
                         "embedding": (x / np.linalg.norm(x, axis=1, keepdims=True)).tolist()})


def add_fake_link_probe_tables(run: Path) -> None:
    """Small slices / issue_attribution / probe_results tables as `uim link` and `uim probe` write them,
    with an extra column each and hostile text in a slice description."""
    n = 18
    slices = pl.DataFrame({
        "slice_id": [f"s{i}" for i in range(n)], "kind": ["cluster", "label"] * (n // 2), "rank": list(range(1, n + 1)),
        "n_down": [100 + 10 * i for i in range(n)], "n_err": [40 - i for i in range(n)],
        "error_rate": [(40 - i) / (100 + 10 * i) for i in range(n)], "lift": [3.0 - 0.1 * i for i in range(n)],
        "lift_lo": [2.0 - 0.08 * i for i in range(n)], "lift_hi": [4.0 - 0.1 * i for i in range(n)],
        "score": [0.9 - 0.02 * i for i in range(n)], "n_pre": [50 + i for i in range(n)],
        "dominant_issue": ["label", "near_duplicate"] * (n // 2),
        "description": ["<script>window.__pwned = 3</script> slice of 'adj.all'"] + [f"slice {i} costs $5$" for i in range(1, n)],
        "members": [[1, 2]] * n})
    attribution = pl.DataFrame({
        "issue": ["label", "near_duplicate", "corrupted", "exact_duplicate"], "odds_ratio": [3.2, 1.4, 0.8, float("inf")],
        "or_lo": [2.1, 0.9, 0.5, 1.0], "or_hi": [4.8, 2.2, 1.3, float("inf")], "p_value": [1e-5, 0.12, 0.4, None],
        "significant": [True, False, False, False], "n_rows": [10, 20, 30, 40]})
    probe = pl.DataFrame([
        {"policy": pol, "metric": m, "value": v - 0.05 * k, "ci_lo": v - 0.05 * k - 0.03, "ci_hi": v - 0.05 * k + 0.03,
         "n_eval": 400, "rows_dropped": 0 if pol == "raw" else 37, "rows_relabelled": 0 if pol == "raw" else 8,
         "rows_reweighted": 0, "seed": 0}
        for pol, v in (("raw", 0.70), ("curated", 0.75))
        for k, m in enumerate(["accuracy", "macro_accuracy", "tail_accuracy", "slice_accuracy"])])
    con = duckdb.connect(str(run / "uim.duckdb"))
    try:
        for name, df in (("slices", slices), ("issue_attribution", attribution), ("probe_results", probe)):
            path = run / f"fake_{name}.parquet"
            df.write_parquet(path)
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet(?)", [str(path)])
    finally:
        con.close()


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Path:
    """A scanned demo-like corpus (all detectors; given embeddings, so no model is loaded)."""
    d = tmp_path_factory.mktemp("report")
    demo_like_corpus().write_parquet(d / "corpus.parquet")
    scan(ScanConfig(corpus=str(d / "corpus.parquet"), out=str(d / "run")), LocalExecutor(progress=False))
    return d / "run"


@pytest.fixture(scope="module")
def linked(scanned, tmp_path_factory) -> Path:
    """The same run with fake `uim link` / `uim probe` tables in uim.duckdb."""
    run = tmp_path_factory.mktemp("report-linked") / "run"
    shutil.copytree(scanned, run)
    add_fake_link_probe_tables(run)
    return run


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Debian's Chromium driven by Playwright (never `playwright install`); a fresh profile."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make chromium` (apt-get install chromium) or set UIM_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1366, "height": 900})
        try:
            yield ctx
        finally:
            ctx.close()


def test_report_opens_offline_in_chromium_and_shows_hostile_text_literally(linked, browser):
    res = runner.invoke(app, ["report", str(linked), "--examples", "20"])
    assert res.exit_code == 0, res.output
    path = Path(res.output.strip())
    assert path == linked / "report.html" and path.exists()
    assert path.stat().st_size < 10_000_000

    page = browser.new_page()
    console, errors, requests, dialogs = [], [], [], []
    page.on("console", lambda m: console.append((m.type, m.text)))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    t0 = time.perf_counter()
    page.goto(path.resolve().as_uri(), wait_until="load")
    seconds = time.perf_counter() - t0

    assert not errors, errors
    assert not [m for m in console if m[0] in ("error", "warning")], console
    assert [u for u in requests if not u.startswith("data:")] == [path.resolve().as_uri()], requests
    assert page.evaluate("performance.getEntriesByType('resource').filter(e => !e.name.startsWith('data:')).length") == 0
    for sid in SECTIONS + OPTIONAL:
        assert page.locator(f"section#{sid}").count() == 1, sid
    images = page.evaluate("""[...document.images].map(i => ({section: i.closest('section').id,
        complete: i.complete, w: i.naturalWidth, h: i.naturalHeight, data: i.src.startsWith('data:image/')}))""")
    assert images and all(i["complete"] and i["w"] > 50 and i["h"] > 50 and i["data"] for i in images), images
    charted = {i["section"] for i in images}
    assert charted >= {"overview", "issues", "classes", "map", "label-noise", "slices", "attribution", "probe"}, charted

    # hostile corpus text: shown as text, never run
    assert page.evaluate("window.__pwned") is None
    assert not dialogs
    assert page.evaluate("document.scripts.length") == 0
    assert page.evaluate("document.querySelectorAll('img:not([src^=\"data:\"])').length") == 0
    body = page.inner_text("body")
    assert SCRIPT in body and IMG in body and HOSTILE_LABEL in body
    assert "<script>window.__pwned = 3</script>" in body
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    page.close()
    print(f"report {path.stat().st_size / 1e6:.2f} MB, loaded in Chromium in {seconds:.2f} s")


def test_optional_sections_come_from_link_and_probe_tables(scanned, linked, tmp_path):
    plain = render_report(RunDir(scanned))
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in plain
    for sid in OPTIONAL:
        assert f'<section id="{sid}">' not in plain

    full = render_report(RunDir(linked))
    for sid in SECTIONS + OPTIONAL:
        assert f'<section id="{sid}">' in full
    assert "&lt;script&gt;window.__pwned = 3&lt;/script&gt; slice of &#39;adj.all&#39;" in full
    assert "slice 14 costs $5$" in full and "slice 15 costs" not in full  # the top 15 slices only
    assert "3.20 [2.10, 4.80]" in full and "∞ [1.00, ∞]" in full  # odds ratio with CI, infinite bound
    assert "0.750 [0.720, 0.780]" in full and "0.700 [0.670, 0.730]" in full  # curated vs raw accuracy
    assert "<script" not in full.lower() and "<img src=x" not in full and "onerror=\"" not in full

    # a table without the columns the report reads: a note, not a crash
    broken = tmp_path / "run"
    shutil.copytree(linked, broken)
    con = duckdb.connect(str(broken / "uim.duckdb"))
    con.execute("CREATE OR REPLACE TABLE probe_results AS SELECT 'raw' AS policy, 0.5 AS value")
    con.close()
    html = render_report(RunDir(broken))
    assert "table probe_results has no column metric, ci_lo, ci_hi" in html


def chart_text(html: str, alt: str) -> str:
    """The SVG source of the chart with this alt text (charts keep their text as text)."""
    m = re.search(r'<img src="data:image/svg\+xml;base64,([^"]+)" alt="' + re.escape(alt) + '"', html)
    assert m, f"no chart {alt!r}"
    return base64.b64decode(m.group(1)).decode()


def test_rare_cluster_line_is_at_the_threshold_the_scan_used(scanned, tmp_path):
    """The cluster chart draws its line at the ``cluster_ratio`` of the run's long_tail summary, not at a
    default copied into the report; a run whose summary lacks it gets no line (the report never guesses)."""
    con = duckdb.connect(str(scanned / "uim.duckdb"), read_only=True)
    summary = json.loads(con.execute("SELECT summary::VARCHAR FROM detectors WHERE issue = 'long_tail'").fetchone()[0])
    con.close()
    assert summary["cluster_ratio"] == 0.25 and summary["class_ratio"] == 0.25
    assert "rare below 0.25 × the median cluster size" in chart_text(render_report(RunDir(scanned)),
                                                                     "bar chart of cluster sizes")

    scan(ScanConfig(corpus=str(scanned.parent / "corpus.parquet"), out=str(tmp_path / "run"), detectors=("long_tail",),
                    detector_options={"long_tail": {"cluster_ratio": 0.6}}), LocalExecutor(progress=False))
    svg = chart_text(render_report(RunDir(tmp_path / "run")), "bar chart of cluster sizes")
    assert "rare below 0.6 × the median cluster size" in svg and "rare below 0.25" not in svg

    con = duckdb.connect(str(tmp_path / "run" / "uim.duckdb"))
    con.execute("UPDATE detectors SET summary = json_object('n_clusters', 3) WHERE issue = 'long_tail'")
    con.close()
    assert "rare below" not in chart_text(render_report(RunDir(tmp_path / "run")), "bar chart of cluster sizes")


def test_report_of_an_unlabelled_run_with_few_detectors(tmp_path, clean_df):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(clean_df.height + 1, 16)).astype(np.float32)
    df = pl.concat([clean_df, clean_df.head(1).with_columns(id=pl.lit("copy"))]).drop("label")
    df = df.with_columns(embedding=pl.Series((x / np.linalg.norm(x, axis=1, keepdims=True)).tolist()))
    df.write_parquet(tmp_path / "c.parquet")
    scan(ScanConfig(corpus=str(tmp_path / "c.parquet"), out=str(tmp_path / "run"),
                    detectors=("exact_duplicate", "corrupted")), LocalExecutor(progress=False))
    out = tmp_path / "elsewhere" / "r.html"
    res = runner.invoke(app, ["report", str(tmp_path / "run"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert "the corpus has no label column" in html and "the label detector did not run" in html
    assert 'id="examples-exact_duplicate"' in html
    # the page is titled by the scanned file (not the run folder's name), the run as it was given
    assert "<h1>uim report: c.parquet</h1>" in html and f"<code>{tmp_path / 'run'}</code>" in html


def test_report_of_a_missing_run_is_a_one_line_error(tmp_path):
    res = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no uim.duckdb" in res.output


def test_report_shows_control_characters_of_corpus_text_as_escapes(tmp_path, clean_df):
    """NUL, ESC, DEL and a right-to-left override in corpus text reach the page as visible escapes (as on
    a terminal), never as raw characters."""
    rng = np.random.default_rng(0)
    hostile = "abc\x00\x00 \x1b[31mred\x1b[0m \x7f\x7f end \u202eevil.exe " * 3
    df = pl.concat([clean_df.drop("label"), pl.DataFrame({"id": ["ctl"], "text": [hostile]})])
    x = rng.normal(size=(df.height, 16)).astype(np.float32)
    df = df.with_columns(embedding=pl.Series((x / np.linalg.norm(x, axis=1, keepdims=True)).tolist()))
    df.write_parquet(tmp_path / "c.parquet")
    scan(ScanConfig(corpus=str(tmp_path / "c.parquet"), out=str(tmp_path / "run"), detectors=("corrupted",)),
         LocalExecutor(progress=False))
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", str(tmp_path / "run"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert "ctl" in html and "\\x1b[31mred" in html and "\\u202eevil" in html
    assert not any(ch in html for ch in "\x00\x1b\x7f\u202e")
