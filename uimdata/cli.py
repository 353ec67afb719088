"""``uim``: the command line (typer + rich), a thin layer over the Python API.

Each command turns its arguments into a call of :mod:`uimdata.api` (``scan``, a ``Run`` method, or
:mod:`uimdata.api.commands` where it needs the pipeline's whole result), or of :func:`uimdata.store.query`
for ``uim query``, then formats the result for the terminal: tables, one ``error:`` line and exit
status 2 for anything a user got wrong."""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from uimdata.display import literal, printable, printable_json
from uimdata.errors import UimError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Inspect pre-training corpora: duplicates, corrupted text, label noise, outliers.")
#: output that is not a terminal (a pipe, a file, a notebook cell) has no width to fit: rich would wrap it
#: at 80 columns, splitting paths and squeezing tables, so it gets this many unless COLUMNS says otherwise
PIPED_WIDTH = 160


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    piped = not (hasattr(stream, "isatty") and stream.isatty()) and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=PIPED_WIDTH if piped else None)


out = _console()
err = _console(stderr=True)


def _fail(e: Exception) -> None:
    """Print ``e`` as the one ``error:`` line (its text literally: it may quote data) and exit 2."""
    err.print(Text.assemble(("error:", "bold red"), " ", literal(e)), highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _os_error(e: OSError) -> UimError:
    """A filesystem failure (disk full, read-only filesystem, permissions) as a one-line error."""
    where = f"{e.filename}: " if e.filename else ""
    what = e.strerror or type(e).__name__
    hint = {errno.ENOSPC: "free some space or write elsewhere with -o",
            errno.EROFS: "write to a writable location with -o",
            errno.EACCES: "check the permissions, or write elsewhere with -o",
            errno.EDQUOT: "free some space or write elsewhere with -o"}.get(e.errno or -1)
    return UimError(f"{where}{what}", expected="a writable location with free space",
                    got=f"errno {e.errno}" if e.errno else str(e), hint=hint)


@contextmanager
def _errors() -> Iterator[None]:
    """Every expected failure of a command ends as one ``error:`` line and exit status 2."""
    try:
        yield
    except UimError as e:
        _fail(e)
    except OSError as e:
        _fail(_os_error(e))


def _say(message: str, style: str = "") -> None:
    """Print a line that may hold data (paths, names) literally."""
    out.print(literal(message, style), highlight=False, soft_wrap=True)


def _cell(v: object) -> Text:
    return literal("" if v is None else (f"{v:.3f}" if isinstance(v, float) else v))


def _table(title: str, columns: list[str], rows: list[tuple]) -> Group:
    """A Rich table whose title, headers and cells are shown literally (no markup, no escapes); the title
    on its own line above it, as wide as the output (a table's own title wraps at the table's width,
    splitting a run path)."""
    t = Table()
    for c in columns:
        t.add_column(literal(c), overflow="fold")
    for r in rows:
        t.add_row(*[_cell(v) for v in r])
    return Group(literal(title, "italic"), t)


def _names(value: str | None) -> list[str] | None:
    """A comma-separated option as a list (None stays None, '' is the empty list)."""
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


@app.command()
def scan(
    corpus: Path = typer.Argument(..., help="parquet file or directory, jsonl, csv, or a HF save_to_disk dir"),
    out_dir: Path = typer.Option(..., "-o", "--out", help="run directory to write (replaced atomically)"),
    model: str = typer.Option("all-MiniLM-L6-v2", help="sentence-transformers model name or path"),
    text_col: str | None = typer.Option(None, help="text column (default: auto-detect)"),
    label_col: str | None = typer.Option(None, help="label column ('' = none)"),
    id_col: str | None = typer.Option(None, help="id column ('' = derive ids from content)"),
    embedding_col: str | None = typer.Option(None, help="precomputed embedding column ('' = embed text)"),
    k: int = typer.Option(10, "--k", min=1, help="neighbours per row in the kNN graph"),
    exact_max: int = typer.Option(20000, help="exact FAISS search up to this many rows, IVF above"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    encoding_errors: str = typer.Option("strict", help="strict | replace (bad bytes become U+FFFD)"),
    detectors: str | None = typer.Option(None, help="comma-separated detectors (default: all)"),
    cache_dir: Path | None = typer.Option(None, help="embedding cache (default ~/.cache/uimdata)"),
    label_model: str = typer.Option("ensemble", help="out-of-fold label model: ensemble | embedding | logreg | knn | text"),
    reference: Path | None = typer.Option(None, help="reference set (e.g. downstream data): adds off_target"),
    engine: str = typer.Option("local", help="local | ray (Ray Data actor pools; pip install 'uimdata[ray]')"),
    address: str | None = typer.Option(None, help="Ray cluster address (auto | ray://HOST:PORT); default: local"),
    embed_batch_rows: int | None = typer.Option(None, min=1, help="rows per embed batch and cache shard (2048)"),
    index: str = typer.Option("auto", help="kNN index above --exact-max: auto | hnsw | ivf | ivfpq"),
    embedding_dtype: str = typer.Option("float32", help="storage of RUN/embeddings: float32 | float16"),
    keep_cols: str | None = typer.Option(None, help="metadata columns kept in samples, comma-separated "
                                         "(default: every column but the text and the embedding; '' = none)"),
    drop_cols: str | None = typer.Option(None, help="metadata columns not kept in samples, comma-separated"),
    group_col: list[str] = typer.Option([], "--group-col", help="column to count issues by (repeatable; "
                                        "default: auto-detect source, domain, dataset, subset, lang, url host; "
                                        "'' = none)"),
    chunking: str = typer.Option("auto", help="long texts: auto | none (auto embeds every window of a text "
                                 "longer than the model's, pooled, when over 2 percent of rows would be cut)"),
) -> None:
    """Scan CORPUS: embed, build the kNN graph, run the detectors, write RUN/uim.duckdb."""
    from uimdata.api import scan as api_scan

    with _errors():
        run = api_scan(corpus, out_dir, text=text_col, label=label_col, id=id_col, embedding=embedding_col,
                       progress=None, model=model, k=k, exact_max=exact_max, device=device,
                       encoding_errors=encoding_errors,
                       detectors=tuple(d.strip() for d in detectors.split(",")) if detectors else None,
                       cache_dir=cache_dir, label_model=label_model, reference=reference, engine=engine,
                       address=address, embed_batch_rows=embed_batch_rows, index=index,
                       embedding_dtype=embedding_dtype, keep_cols=_names(keep_cols), drop_cols=_names(drop_cols),
                       group_cols=None if not group_col else [g for g in group_col if g], chunking=chunking)
    meta = run.meta
    summ, skipped = meta["summary"], meta.get("skipped") or {}
    n = summ[0]["n_rows"] if summ else 0
    rows = [(s["issue"], s["n_flagged"], f"{100 * s['n_flagged'] / max(n, 1):.1f}%") for s in summ]
    out.print(_table(f"{n:,} rows scanned -> {run.path}", ["issue", "flagged", "%"], rows))
    emb = meta.get("embedding") or {}
    if emb.get("from_cache"):  # the embed bar counted only the texts it embedded
        _say(f"embeddings: {emb['from_cache']:,} rows from the embedding cache, {emb.get('embedded', 0):,} "
             f"texts embedded ({emb.get('model')})", "dim")
    for name, why in skipped.items():
        _say(f"{name}: skipped, {why}", "dim")
    _say(f"query it: uim query {run.path} \"SELECT * FROM issues LIMIT 10\"")


@app.command()
def query(
    run: Path = typer.Argument(..., help="run directory"),
    sql: str = typer.Argument(..., help="SQL over samples, neighbors, flags, issues, issue_summary, ..."),
    format: str = typer.Option("table", "--format", help="table | csv | json | parquet"),
    output: Path | None = typer.Option(None, "-o", "--output", help="write to FILE instead of stdout"),
    limit: int = typer.Option(50, help="rows shown in table format"),
    allow_files: bool = typer.Option(False, "--allow-files", help="let SQL read and write files outside "
                                     "the run (read_parquet, COPY ... TO, ATTACH); off by default"),
) -> None:
    """Run SQL against RUN/uim.duckdb (read-only; no file or network access unless --allow-files)."""
    from uimdata.rundir import RunDir
    from uimdata.store import query as run_query

    if format not in ("table", "csv", "json", "parquet"):
        _fail(UimError("--format", expected="table, csv, json or parquet", got=repr(format)))
    if format == "parquet" and output is None:
        _fail(UimError("--format parquet needs a file", expected="-o FILE", got="no -o"))
    with _errors():  # the query Run.sql runs; its hint names the switch as this command spells it
        df = run_query(RunDir(run), sql, allow_files=allow_files, files_flag="--allow-files")
        _write_frame(df, format, output, limit)


def _write_frame(df: pl.DataFrame, format: str, output: Path | None, limit: int) -> None:
    """A query result as a table (for people: shown literally), csv, json or parquet. Files get the
    data verbatim; on stdout, control characters in csv are made visible (json escapes them itself)."""
    if format == "table":
        t = _table(f"{df.height} rows", df.columns, [tuple(r) for r in df.head(limit).iter_rows()])
        if output is None:
            out.print(t)
        else:
            with output.open("w") as f:
                Console(file=f, width=200).print(t)
    elif format == "csv":
        flat = _flat(df)
        if output:
            flat.write_csv(output)
        else:
            sys.stdout.write(printable(flat.write_csv(), keep_newlines=True))
    elif format == "json":
        df.write_ndjson(output) if output else sys.stdout.write(printable_json(df.write_ndjson()))
    else:
        df.write_parquet(output)


def _flat(df: pl.DataFrame) -> pl.DataFrame:
    """csv holds no nested values: list, array and struct columns are written as JSON text."""
    nested = [c for c, t in df.schema.items() if t.is_nested()]
    if not nested:
        return df
    return df.with_columns([pl.Series(c, [None if v is None else json.dumps(v, default=str)
                                          for v in df[c].to_list()], pl.Utf8) for c in nested])


@app.command()
def summary(
    run: Path = typer.Argument(..., help="run directory"),
    examples: int = typer.Option(3, help="worst examples shown per issue"),
) -> None:
    """Print the issue summary and the worst examples of each issue."""
    from uimdata.detectors import REGISTRY
    from uimdata.rundir import RunDir
    from uimdata.store import connect, load_sql

    with _errors():
        con = connect(RunDir(run))
    summ = con.sql("SELECT issue, n_flagged, fraction, mean_score FROM issue_summary").fetchall()
    out.print(_table(f"issue summary: {run}", ["issue", "flagged", "fraction", "mean score"], summ))
    for issue, summ_json in con.execute("SELECT issue, summary::VARCHAR FROM detectors").fetchall():
        info = json.loads(summ_json)
        if info.get("skipped"):
            _say(f"{issue}: skipped, {info['skipped']}", "dim")
        elif issue in REGISTRY and (line := REGISTRY[issue].summary_line(info)):  # the detector's own line
            _say(line)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "label_noise_matrix" in tables:
        noise = con.execute("SELECT given_label, suggested_label, count, fraction_of_given "
                            "FROM label_noise_matrix ORDER BY count DESC LIMIT 10").fetchall()
        out.print(_table("label noise (confident joint, off-diagonal)",
                         ["given", "suggested", "count", "share of given"], noise))
    from uimdata.groups import language_mix, worst_groups

    mix = language_mix(con)
    if mix:
        _say("languages: " + ", ".join(f"{lang} {100 * share:.1f}%" for lang, _, share, _ in mix[:8])
             + (f" (+{len(mix) - 8} more)" if len(mix) > 8 else ""))
    worst = [(i, f"{gc}={g}", n, k, f"{r:.3f} [{lo:.3f}, {hi:.3f}]", lf)
             for i, gc, g, n, k, r, lo, hi, lf in worst_groups(con)]
    if worst:
        out.print(_table("worst groups per issue (flagged rate significantly above the corpus-wide rate; "
                         "all: SELECT * FROM issue_by_group)",
                         ["issue", "group", "rows", "flagged", "rate [95% CI]", "lift"], worst))
    ex = con.execute(load_sql("top_examples"), {"per_issue": examples}).fetchall()
    con.close()
    rows = [(i, id_, s, r, (t[:100] + "…") if len(t) > 100 else t) for i, id_, s, r, t in ex]
    out.print(_table("worst examples", ["issue", "id", "score", "reason", "text"], rows))


@app.command()
def report(
    run: Path = typer.Argument(..., help="run directory"),
    output: Path | None = typer.Option(None, "-o", "--output", help="HTML file to write (default RUN/report.html)"),
    examples: int = typer.Option(10, min=1, help="worst examples shown per issue"),
) -> None:
    """Write one self-contained HTML report of RUN (opens offline) and print its path."""
    from uimdata.api import Run

    with _errors():
        path = Run(run).report(output, examples=examples)
    _say(str(path))


@app.command()
def link(
    run: Path = typer.Argument(..., help="run directory written by `uim scan`"),
    downstream: Path = typer.Argument(..., help="downstream eval set: text (or embedding) + correct, "
                                                "or prediction + label, or loss"),
    k: int = typer.Option(10, "--k", min=1, help="pre-training neighbours per downstream row"),
    slice_col: list[str] = typer.Option([], "--slice-col", help="downstream column to slice by (repeatable)"),
    text_col: str | None = typer.Option(None, help="text column (default: auto-detect)"),
    label_col: str | None = typer.Option(None, help="true label column ('' = none)"),
    prediction_col: str | None = typer.Option(None, help="model prediction column"),
    correct_col: str | None = typer.Option(None, help="boolean correctness column"),
    loss_col: str | None = typer.Option(None, help="per-row loss column"),
    id_col: str | None = typer.Option(None, help="id column ('' = row position)"),
    embedding_col: str | None = typer.Option(None, help="precomputed embedding column ('' = embed text)"),
    min_down: int = typer.Option(10, min=1, help="downstream rows a slice needs to be ranked"),
    top: int = typer.Option(10, min=1, help="slices printed"),
    device: str = typer.Option("auto", help="auto | cpu | cuda (embedding the downstream set)"),
    cache_dir: Path | None = typer.Option(None, help="embedding cache (default ~/.cache/uimdata)"),
) -> None:
    """Link a downstream model's errors to the pre-training slices and issues that explain them."""
    from uimdata.api import Run
    from uimdata.api.commands import link as api_link

    with _errors():
        res = api_link(Run(run), downstream, progress=None, k=k, slice_cols=tuple(slice_col), text_col=text_col,
                       label_col=label_col, prediction_col=prediction_col, correct_col=correct_col,
                       loss_col=loss_col, id_col=id_col, embedding_col=embedding_col, min_down=min_down,
                       device=device, cache_dir=cache_dir)
    for warning in res.warnings:
        err.print(Text.assemble(("warning:", "bold yellow"), " ", literal(warning)), highlight=False,
                  soft_wrap=True)
    what = "error rate" if res.outcome != "loss" else "mean loss"
    _say(f"{res.n_down:,} downstream rows, {what} {res.error_rate:.3f}; "
         f"{res.bias_regions} inherited-label-bias region(s)")
    rows = []
    for r in res.slices.filter(res.slices["rank"].is_not_null()).head(top).iter_rows(named=True):
        ci = f"{r['lift']:.2f} [{r['lift_lo']:.2f}, {r['lift_hi']:.2f}]" if r["lift"] is not None else ""
        issue = "inherited_label_bias" if r["inherited_label_bias"] else (r["dominant_issue"] or "-")
        rows.append((r["rank"], r["slice_id"], r["n_down"], r["error_rate"], ci, r["n_pre"], issue,
                     (r["description"] or "")[:90]))
    out.print(_table("top slices (tier, then lower bound of the error lift)",
                     ["rank", "slice", "n", what, "lift [95% CI]", "pre rows", "issue", "description"], rows))
    att = [(r["issue"], r["odds_ratio"], f"[{r['or_lo']:.2f}, {r['or_hi']:.2f}]" if r["or_lo"] is not None else "",
            r["p_value"], "yes" if r["significant"] else "no") for r in res.attribution.iter_rows(named=True)]
    out.print(_table("issue attribution (odds ratio of an error per +10 points of flagged neighbours)",
                     ["issue", "odds ratio", "95% CI", "p", "significant"], att))
    _say(f"query it: uim query {run} \"SELECT * FROM slices ORDER BY rank LIMIT 20\"")


@app.command()
def curate(
    run: Path = typer.Argument(..., help="run directory written by `uim scan` (and `uim link`)"),
    out_dir: Path = typer.Option(..., "-o", "--out", help="directory for the curated rows and manifest"),
    policy: str = typer.Option("default", help="conservative | default | aggressive | a TOML policy file"),
    format: str = typer.Option("parquet", "--format", help="parquet | jsonl | hf (datasets.save_to_disk)"),
    upsample: bool = typer.Option(False, help="repeat reweighted rows round(weight) times instead of a weight"),
) -> None:
    """Export a curated training set: every row kept, dropped, relabelled or reweighted, with its reason."""
    from uimdata.api import Run
    from uimdata.api.commands import curate as api_curate

    with _errors():
        cur, target = api_curate(Run(run), policy, out_dir, format=format, upsample=upsample)
    counts = cur.counts or {}
    n = sum(counts.values())
    rows = [(a, counts.get(a, 0), f"{100 * counts.get(a, 0) / max(n, 1):.1f}%")
            for a in ("kept", "relabelled", "reweighted", "dropped")]
    out.print(_table(f"policy {cur.policy_name}: {n:,} rows -> {target}", ["action", "rows", "%"], rows))
    by_issue = (cur.manifest.filter(cur.manifest["action"] != "kept").group_by("action", "issue").len()
                .sort("len", descending=True).head(12))
    out.print(_table("by issue", ["action", "issue", "rows"], [tuple(r) for r in by_issue.iter_rows()]))
    _say(f"manifest: {out_dir / 'manifest.parquet'}; in SQL: table curation")


@app.command()
def probe(
    run: Path = typer.Argument(..., help="run directory written by `uim scan` (and `uim link`)"),
    downstream: Path = typer.Argument(..., help="evaluation set with text (or embedding) and the true label; "
                                                "not the split `uim link` used"),
    policy: list[str] = typer.Option([], "--policy", help="policy to compare with raw (repeatable; default: "
                                                          "conservative, default, aggressive)"),
    allow_leak: bool = typer.Option(False, help="evaluate even on rows `uim link` used"),
    label_col: str | None = typer.Option(None, help="true label column"),
    text_col: str | None = typer.Option(None, help="text column"),
    embedding_col: str | None = typer.Option(None, help="precomputed embedding column"),
    top_slices: int = typer.Option(5, min=1, help="`uim link` slices whose rows make slice_accuracy"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
) -> None:
    """Train the same linear probe on the raw corpus and on each curated variant; compare on DOWNSTREAM."""
    from uimdata.api import Run
    from uimdata.api.commands import probe as api_probe
    from uimdata.probe import METRICS

    with _errors():  # no --policy: the default policies
        res = api_probe(Run(run), downstream, tuple(policy), progress=None, allow_leak=allow_leak,
                        label_col=label_col, text_col=text_col, embedding_col=embedding_col, top_slices=top_slices,
                        device=device)
    for warning in res.warnings:
        err.print(Text.assemble(("warning:", "bold yellow"), " ", literal(warning)), highlight=False,
                  soft_wrap=True)
    _say(f"linked on: {res.link_source or '(no uim link run)'}; evaluated on: {res.eval_source} "
         f"({res.n_eval:,} labelled rows, {res.overlap} shared with the link split)")
    r = res.results
    metrics = [m for m in METRICS if m in r["metric"]]
    rows = []
    for pol in r["policy"].unique(maintain_order=True):
        sub = r.filter(r["policy"] == pol)
        first = sub.row(0, named=True)
        cells = []
        for m in metrics:
            x = sub.filter(sub["metric"] == m).row(0, named=True)
            cells.append(f"{x['value']:.3f} [{x['ci_lo']:.3f}, {x['ci_hi']:.3f}] n={x['n_eval']}"
                         if x["value"] is not None else "-")
        rows.append((pol, *cells, first["n_train"], first["rows_dropped"], first["rows_relabelled"],
                     first["rows_reweighted"]))
    out.print(_table("raw vs curated (95% intervals)", ["policy", *metrics, "train rows", "dropped",
                                                          "relabelled", "reweighted"], rows))
    for pol, hurt in (getattr(res, "hurt", None) or {}).items():  # classes whose accuracy fell significantly
        if hurt:
            _say(f"{pol}: accuracy fell significantly on {len(hurt)} class(es): {', '.join(hurt[:10])}"
                 f"{' ...' if len(hurt) > 10 else ''}")
    _say(f"query it: uim query {run} \"SELECT * FROM probe_results\"; per class: probe_classes")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
