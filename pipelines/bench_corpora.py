"""The real-corpus benchmark of `make bench` (also `python -m pipelines.bench_corpora [OUT]`):

1. builds the corpus of pipelines/build_real_corpus.py (Debian changelogs, copyright files, Python
   docstrings, man pages: four sources, five files in four formats, long documents, planted defects);
2. scans it (defaults: every detector, --chunking auto, group columns auto-detected) and reports
   precision / recall / F1 per planted issue, the issue_by_group rows of every source (rate, lift,
   and the planted counts next to them) and the language mix;
3. long documents: how often a copy of a document whose first window was replaced by another
   document's still has its original as nearest neighbour, truncated to the first window vs pooled
   windows; and the chunked embedding's throughput in tokens/s against the bare model's ``encode``
   on the same windows.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.bench_scan import quality
from pipelines.build_real_corpus import build

ROOT = Path(__file__).resolve().parents[1]


def _prf(flagged: set, truth: set) -> dict:
    tp = len(flagged & truth)
    p = tp / len(flagged) if flagged else 0.0
    r = tp / len(truth) if truth else 0.0
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(2 * p * r / (p + r), 3) if p + r else 0.0,
            "flagged": len(flagged), "planted": len(truth)}


def evaluate(run: Path, truth: pl.DataFrame) -> dict:
    import duckdb

    con = duckdb.connect(str(run / "uim.duckdb"), read_only=True)
    flags = con.sql("SELECT * FROM flags").pl()
    # duplicates scored per planted group (uimdata.evaluate), as for the demo corpus
    out: dict = {"issues": {}, "quality": {k: {a: round(x, 3) if isinstance(x, float) else x for a, x in v.items()} for k, v in
                                           quality(flags, truth.select("id", "defect", "kind", "source_id")).items()}}
    out["natural_exact_duplicates"] = int(flags.filter(pl.col("is_exact_duplicate_issue")
                                                       & ~pl.col("id").is_in(truth["id"].to_list())).height)
    for issue in ("exact_duplicate", "near_duplicate", "corrupted", "outlier"):
        col = f"is_{issue}_issue"
        if col not in flags.columns:
            continue
        got = set(flags.filter(pl.col(col))["id"])
        planted = set(truth.filter(pl.col("defect") == issue)["id"])
        out["issues"][issue] = _prf(got, planted)
        if issue == "outlier":
            # the language identifier as evidence: rows whose detected language is not the corpus's main one
            lang = con.sql("SELECT id FROM samples WHERE lang IS NOT NULL AND lang_conf >= 0.9 AND lang <> "
                           "(SELECT mode(lang) FROM samples)").pl()
            out["issues"]["outlier"]["lang_rule"] = _prf(set(lang["id"]), planted)
            out["issues"][issue]["recall_by_kind"] = {
                k: round(len(got & set(g["id"])) / g.height, 3)
                for (k,), g in truth.filter(pl.col("defect") == "outlier").group_by("kind")}
    # per source: the issue_by_group rows with the planted counts next to them
    by = con.sql("SELECT \"group\", issue, n_rows, n_flagged, rate, rate_lo, rate_hi, lift FROM issue_by_group "
                 "WHERE group_col = 'source' ORDER BY \"group\", issue").pl()
    src = con.sql("SELECT id, source FROM samples").pl()
    planted = truth.join(src, on="id").group_by("source", "defect").len()
    out["by_source"] = [
        r | {"planted": int(planted.filter((pl.col("source") == r["group"]) & (pl.col("defect") == r["issue"]))
                            ["len"].sum())}
        for r in by.with_columns(pl.col("rate", "rate_lo", "rate_hi", "lift").round(4)).iter_rows(named=True)]
    out["language_mix"] = con.execute("SELECT lang, n_rows FROM (SELECT coalesce(lang, '(none)') AS lang, count(*) "
                                      "AS n_rows FROM samples GROUP BY 1) ORDER BY n_rows DESC LIMIT 12").fetchall()
    out["worst_groups"] = [list(r) for r in con.execute(
        "SELECT issue, group_col, \"group\", n_rows, n_flagged, round(lift, 2) FROM issue_by_group "
        "WHERE rate_lo > corpus_rate ORDER BY rate_lo / corpus_rate DESC LIMIT 12").fetchall()]
    return out


def replaced_first_window(texts: list[str], n: int = 300, seed: int = 0) -> dict:
    """Nearest-neighbour test of truncation vs pooling on real long documents (>= 3 windows)."""
    from uimdata.stages.embed import EmbedStage

    rng = np.random.default_rng(seed)
    pooled, truncated = EmbedStage(chunking=True), EmbedStage(chunking=False)
    w = pooled.window
    spans = pooled.spans(texts)
    long = [i for i, sp in enumerate(spans) if len(sp) >= 3 * w]
    pick = rng.choice(long, size=min(n, len(long)), replace=False)
    donors = rng.permutation(pick)
    originals = [texts[i] for i in pick]
    copies = []
    for i, d in zip(pick, donors):
        d = d if d != i else pick[(list(pick).index(i) + 1) % len(pick)]
        head = texts[d][: spans[d][w - 1][1]]
        copies.append(head + " " + texts[i][spans[i][w][0]:])
    res = {"documents": len(pick), "window_tokens": w}
    for name, stage in (("truncation", truncated), ("pooling", pooled)):
        t0 = time.perf_counter()
        emb = stage.encode(originals + copies)
        sims = emb[len(pick):] @ emb.T
        sims[np.arange(len(pick)), len(pick) + np.arange(len(pick))] = -2  # not itself
        hit = (sims.argmax(axis=1) == np.arange(len(pick))).mean()
        res[name] = {"original_is_nearest": round(float(hit), 3), "seconds": round(time.perf_counter() - t0, 1)}
    return res


def throughput(texts: list[str], n: int = 100, repeats: int = 2, seed: int = 1) -> dict:
    """Tokens/s of the chunked embedding (tokenise, cut windows, encode, pool) against the bare model's
    ``encode`` of the same window texts."""
    from uimdata.stages.embed import EmbedStage

    stage = EmbedStage(chunking=True)
    w = stage.window
    spans = stage.spans(texts)
    long = [i for i, sp in enumerate(spans) if len(sp) > w]
    pick = np.random.default_rng(seed).choice(long, size=min(n, len(long)), replace=False)
    docs = [texts[i] for i in pick]
    windows = [piece for d, sp in zip(docs, stage.spans(docs)) for piece in stage.windows(d, sp)]
    tokens = sum(k for _, k in windows)
    pieces = [p for p, _ in windows]
    stage.encode(docs[:4])  # warm-up
    best = {"chunked": [], "bare": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        stage.model.encode(pieces, batch_size=stage.encode_batch_size, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
        best["bare"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        stage.encode(docs)
        best["chunked"].append(time.perf_counter() - t0)
    bare, chunked = float(np.median(best["bare"])), float(np.median(best["chunked"]))
    return {"documents": len(docs), "windows": len(windows), "tokens": tokens,
            "bare_tokens_per_s": round(tokens / bare), "chunked_tokens_per_s": round(tokens / chunked),
            "overhead": round(chunked / bare - 1, 3)}


def chunking_only(out: Path, n_replaced: int, n_throughput: int) -> dict:
    """The long-document tests on the unplanted texts of a corpus built earlier under ``out``."""
    from uimdata.readers import corpus_files

    truth = set(pl.read_parquet(out / "truth.parquet")["id"])
    texts = []
    for f in corpus_files(out / "corpus"):
        for b in f.read()[1]:
            col = next(c for c in ("text", "content", "body") if c in b.column_names)
            texts += [t for i, t in zip(b.column("id").to_pylist(), b.column(col).to_pylist()) if i not in truth]
    print(f"== long documents ({len(texts)} texts): first window replaced, truncation vs pooling", flush=True)
    res = {"replaced_first_window": replaced_first_window(texts, n=n_replaced)}
    print(json.dumps(res), flush=True)
    print("== chunked embedding throughput vs the bare model on the same windows", flush=True)
    res["chunk_throughput"] = throughput(texts, n=n_throughput)
    return res


def run(run_scan, out: Path | None = None, scale: float = 1.0, n_replaced: int = 300,  # noqa: ANN001
        n_throughput: int = 100) -> dict:
    """``scale`` < 1 builds a smaller corpus (same sources, fewer documents per source)."""
    out = out or ROOT / "runs" / "bench" / "real"
    out.mkdir(parents=True, exist_ok=True)
    print("== real corpus: Debian changelogs, copyright files, Python docstrings, man pages", flush=True)
    built = build(out, scale=scale)
    truth = pl.read_parquet(out / "truth.parquet")
    r = run_scan(out / "corpus", out / "run", cold_cache=True)
    meta = json.loads((out / "run" / "run.json").read_text())
    res = {"corpus": built, "seconds": round(r["seconds"], 1), "peak_rss_mb": round(r["peak_rss_mb"]),
           "stages": {k: round(v["seconds"], 1) for k, v in r["timings"].items()},
           "chunking": meta.get("chunking"), "files": meta.get("files"), **evaluate(out / "run", truth)}
    import duckdb

    con = duckdb.connect(str(out / "run" / "uim.duckdb"), read_only=True)
    planted = set(truth["id"])
    texts = [t for i, t in con.execute("SELECT id, text FROM samples ORDER BY row").fetchall() if i not in planted]
    con.close()
    print("== long documents: first window replaced, truncation vs pooling", flush=True)
    res["replaced_first_window"] = replaced_first_window(texts, n=n_replaced)
    print("== chunked embedding throughput vs the bare model on the same windows", flush=True)
    res["chunk_throughput"] = throughput(texts, n=n_throughput)
    return res


if __name__ == "__main__":
    from pipelines.bench_scan import run_scan

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", type=Path, default=None)
    ap.add_argument("--scale", type=float, default=1.0, help="documents per source x this (1 = ~3,500 documents)")
    ap.add_argument("--replaced", type=int, default=300, help="documents in the replaced-first-window test")
    ap.add_argument("--throughput", type=int, default=100, help="documents in the throughput test")
    ap.add_argument("--only-chunking", action="store_true", help="skip the scan: the two long-document tests "
                    "on the texts of an existing OUT/corpus")
    a = ap.parse_args()
    where = a.out
    if a.only_chunking:
        result = chunking_only(where or ROOT / "runs" / "bench" / "real", a.replaced, a.throughput)
    else:
        result = run(run_scan, where, a.scale, a.replaced, a.throughput)
    print(json.dumps(result, indent=1, default=str))
    target = (where or ROOT / "runs" / "bench" / "real") / "results.json"
    target.write_text(json.dumps(result, indent=2, default=str))
    print(f"written {target}")
