"""page: the report as one HTML page: read the run, build its sections in order, render
``templates/report.html``, and write the file (atomically, and only over a report uimdata wrote).
"""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timezone
from pathlib import Path

import duckdb

import uimdata
from uimdata.display import visible_controls
from uimdata.errors import UimError
from uimdata.report import classes, corpus, db, embedding_map, link_probe
from uimdata.report.by_source import report_section
from uimdata.report.charts import RC
from uimdata.rundir import RunDir, atomic_write_text
from uimdata.store import connect

EXAMPLES = 10          # worst rows shown per issue

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'none'; "
       "base-uri 'none'; form-action 'none'")
#: the mark every report carries in its <head>; a file without it was not written by `uim report`
GENERATOR = '<meta name="generator" content="uimdata">'
TEMPLATES = Path(uimdata.__file__).parent / "templates"


def write_report(run: RunDir | str | Path, out: str | Path | None = None, *, examples: int = EXAMPLES,
                 seed: int = 0) -> Path:
    """Render the report of ``run`` and write it (atomically) to ``out``, default ``RUN/report.html``."""
    run = run if isinstance(run, RunDir) else RunDir(run)
    path = Path(out) if out is not None else run.path / "report.html"
    if out is not None:  # RUN/report.html is the run's own (docs/run-directory.md)
        _check_target(path)
    atomic_write_text(render_report(run, examples=examples, seed=seed), path)
    return path


def _check_target(path: Path) -> None:
    """Replace only a report written by uimdata: never a folder or another file of the user's."""
    if path.is_dir():
        raise UimError(f"-o {path} is a folder", expected="an HTML file path",
                       hint=f"e.g. -o {path / 'report.html'}")
    if path.exists():
        with path.open("rb") as f:
            head = f.read(4096)
        if GENERATOR.encode() not in head:
            raise UimError(f"-o {path} exists and is not a uimdata report", expected="a new path or a report "
                           "written by `uim report`", got="another file",
                           hint="pass a new path; uimdata never replaces files it did not write")


def render_report(run: RunDir, *, examples: int = EXAMPLES, seed: int = 0) -> str:
    """The report as one HTML string."""
    con = connect(run)
    try:
        sections = build_sections(run, con, examples=examples, seed=seed)
    finally:
        con.close()
    return _render(run, sections)


def build_sections(run: RunDir, con: duckdb.DuckDBPyConnection, *, examples: int = EXAMPLES, seed: int = 0
                   ) -> list[dict]:
    """Every section of the report, in page order: the scan's six, "Issues by source" when the run has
    groups, then those of ``uim link`` / ``uim probe`` whose tables exist. The first is the overview."""
    import matplotlib

    tables = db.tables(con)
    meta = json.loads(run.meta.read_text()) if run.meta.exists() else {}
    with matplotlib.rc_context(RC), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. glyphs missing from the font for some labels
        summary = corpus.issue_summary(con)
        detectors = db.detectors(con)
        sections = [
            corpus.overview(con, tables, meta, detectors),
            summary,
            corpus.examples(con, summary["issues"], examples),
            classes.classes(con, tables, detectors),
            embedding_map.embedding_map(run, con, [i for i, _ in summary["issues"]], seed),
            classes.label_noise(con, tables, detectors),
            report_section(con),  # issues by source (by_source.py)
            link_probe.slices(con, tables),
            link_probe.attribution(con, tables),
            link_probe.probe(con, tables),
        ]
    return [s for s in sections if s is not None]


def _corpus_name(run: RunDir) -> str:
    """What the page is about: the scanned file's name (several files: the first and a count); the run
    folder's name when run.json names no file. Names only, never a full path (the page is shared)."""
    try:
        files = [f.get("source_file") or Path(f["path"]).name
                 for f in json.loads(run.meta.read_text()).get("files") or []]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        files = []
    if not files:
        return run.path.resolve().name
    more = len(files) - 1
    return files[0] if not more else f"{files[0]} and {more} more file{'s' if more > 1 else ''}"


def _render(run: RunDir, sections: list[dict]) -> str:
    """Fill the page template (autoescaped: every string of the sections shows as text)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    n_rows = sections[0]["n_rows"]
    # control and bidi characters of corpus text shown as escapes, as on a terminal (display.printable)
    return visible_controls(env.get_template("report.html").render(
        csp=CSP, title=f"uim report: {_corpus_name(run)}", run_path=str(run.path),
        version=uimdata.__version__,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), n_rows=f"{n_rows:,}",
        sections=sections))
