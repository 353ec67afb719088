"""``uim``: the command line (typer + rich)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from uimdata.errors import UimError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Inspect pre-training corpora: duplicates, corrupted text, label noise, outliers.")
out = Console()
err = Console(stderr=True)


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _table(title: str, columns: list[str], rows: list[tuple]) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*["" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v)) for v in r])
    return t


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
    label_model: str = typer.Option("ensemble", help="out-of-fold label model: ensemble | logreg | knn"),
    reference: Path | None = typer.Option(None, help="reference set (e.g. downstream data): adds off_target"),
    engine: str = typer.Option("local", help="local | ray (Ray Data actor pools; pip install 'uimdata[ray]')"),
    address: str | None = typer.Option(None, help="Ray cluster address (auto | ray://HOST:PORT); default: local"),
    embed_batch_rows: int | None = typer.Option(None, min=1, help="rows per embed batch and cache shard (2048)"),
) -> None:
    """Scan CORPUS: embed, build the kNN graph, run the detectors, write RUN/uim.duckdb."""
    from uimdata.scan import DEFAULT_DETECTORS, ScanConfig
    from uimdata.scan import scan as run_scan

    if label_model not in ("ensemble", "logreg", "knn"):
        _fail(UimError("--label-model", expected="ensemble, logreg or knn", got=repr(label_model)))
    if encoding_errors not in ("strict", "replace"):
        _fail(UimError("--encoding-errors", expected="strict or replace", got=repr(encoding_errors)))
    cfg = ScanConfig(corpus=str(corpus), out=str(out_dir), model=model, text_col=text_col, label_col=label_col,
                     id_col=id_col, embedding_col=embedding_col, k=k, exact_max=exact_max, device=device,
                     encoding_errors=encoding_errors,
                     detectors=tuple(d.strip() for d in detectors.split(",")) if detectors else DEFAULT_DETECTORS,
                     cache_dir=str(cache_dir) if cache_dir else None, label_model=label_model,
                     reference=str(reference) if reference else None, engine=engine, address=address,
                     embed_batch_rows=embed_batch_rows)
    try:
        res = run_scan(cfg)
    except UimError as e:
        _fail(e)
    n = res.summary[0]["n_rows"] if res.summary else 0
    rows = [(s["issue"], s["n_flagged"], f"{100 * s['n_flagged'] / max(n, 1):.1f}%") for s in res.summary]
    out.print(_table(f"{n:,} rows scanned -> {res.run.path}", ["issue", "flagged", "%"], rows))
    for name, why in res.skipped.items():
        out.print(f"[dim]{name}: skipped, {why}[/]")
    out.print(f"query it: uim query {res.run.path} \"SELECT * FROM issues LIMIT 10\"")


@app.command()
def query(
    run: Path = typer.Argument(..., help="run directory"),
    sql: str = typer.Argument(..., help="SQL over samples, neighbors, flags, issues, issue_summary, ..."),
    format: str = typer.Option("table", "--format", help="table | csv | json | parquet"),
    output: Path | None = typer.Option(None, "-o", "--output", help="write to FILE instead of stdout"),
    limit: int = typer.Option(50, help="rows shown in table format"),
) -> None:
    """Run SQL against RUN/uim.duckdb."""
    import duckdb

    from uimdata.rundir import RunDir
    from uimdata.store import connect

    if format not in ("table", "csv", "json", "parquet"):
        _fail(UimError("--format", expected="table, csv, json or parquet", got=repr(format)))
    if format == "parquet" and output is None:
        _fail(UimError("--format parquet needs a file", expected="-o FILE", got="no -o"))
    try:
        con = connect(RunDir(run))
        rel = con.sql(sql)
        if rel is None:
            _fail(UimError("query returned no rows", expected="a SELECT", got=sql[:60]))
        df = rel.pl()
    except UimError as e:
        _fail(e)
    except duckdb.Error as e:
        _fail(UimError(f"query failed: {str(e).splitlines()[0]}", hint="tables: samples, neighbors, flags, "
                       "detectors; views: issues, issue_scores, issue_summary"))
    if format == "table":
        t = _table(f"{df.height} rows", df.columns, [tuple(r) for r in df.head(limit).iter_rows()])
        (out if output is None else Console(file=output.open("w"), width=200)).print(t)
    elif format == "csv":
        df.write_csv(output) if output else sys.stdout.write(df.write_csv())
    elif format == "json":
        df.write_ndjson(output) if output else sys.stdout.write(df.write_ndjson())
    else:
        df.write_parquet(output)


@app.command()
def summary(
    run: Path = typer.Argument(..., help="run directory"),
    examples: int = typer.Option(3, help="worst examples shown per issue"),
) -> None:
    """Print the issue summary and the worst examples of each issue."""
    from uimdata.rundir import RunDir
    from uimdata.store import connect, load_sql

    try:
        con = connect(RunDir(run))
    except UimError as e:
        _fail(e)
    summ = con.sql("SELECT issue, n_flagged, fraction, mean_score FROM issue_summary").fetchall()
    out.print(_table(f"issue summary: {run}", ["issue", "flagged", "fraction", "mean score"], summ))
    for issue, summ_json in con.execute("SELECT issue, summary::VARCHAR FROM detectors").fetchall():
        info = json.loads(summ_json)
        if info.get("skipped"):
            out.print(f"[dim]{issue}: skipped, {info['skipped']}[/]")
        elif issue == "long_tail":
            out.print(f"long tail: tail classes {info.get('tail_classes')} ({info.get('tail_rule')}); "
                      f"{len(info.get('rare_clusters', []))} rare clusters of {info.get('n_clusters')}")
        elif issue == "label":
            out.print(f"label: estimated noise rate {info.get('estimated_noise_rate', 0):.1%} "
                      f"({info.get('label_model')} out-of-fold probabilities)")
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "label_noise_matrix" in tables:
        noise = con.execute("SELECT given_label, suggested_label, count, fraction_of_given "
                            "FROM label_noise_matrix ORDER BY count DESC LIMIT 10").fetchall()
        out.print(_table("label noise (confident joint, off-diagonal)",
                         ["given", "suggested", "count", "share of given"], noise))
    ex = con.execute(load_sql("top_examples"), {"per_issue": examples}).fetchall()
    rows = [(i, id_, s, r, (t[:100] + "…") if len(t) > 100 else t) for i, id_, s, r, t in ex]
    out.print(_table("worst examples", ["issue", "id", "score", "reason", "text"], rows))


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
