"""Multi-domain benchmark: every detector on four real corpora of different kinds, next to cleanlab
Datalab with its defaults on the same embeddings (corpora: ``pipelines/build_domains.py``).

Per corpus: ``uim scan`` with the precomputed ``embedding`` column and the default settings, then

* ``corrupted``: precision / recall / F1 against the planted corrupted rows, recall per planted kind;
* clean-row flag rates of ``corrupted``, ``low_quality`` and both together (clean = not planted), and
  every clean row flagged, with its reason, in ``runs/domains/<corpus>_clean_flags.csv`` for a hand check;
* ``near_duplicate``: pair-aware P/R/F1 and membership P/R/F1 (Datalab's semantics);
* ``outlier``: precision, recall, recall per kind (other language, other genre);
* ``label`` (labelled corpora): P/R/F1 against the planted label noise (OOD rows not scored), and the
  printed noise-rate estimate next to the planted rate;
* Datalab ``find_issues`` with its defaults (``features`` = the same embeddings; ``pred_probs`` =
  uimdata's out-of-fold probabilities where labelled): near_duplicate (membership), outlier, label;
* seconds per stage, and per row / per 1,000 characters;
* cost against length (:func:`length_cost`): the same 1,300 rows at 4,000 and at 100 characters, same
  embeddings, seconds per row (median of three runs each) and their ratio (``results.json`` ``length_cost``).

``python -m pipelines.bench_domains [corpus ...] [--no-datalab] [--old-corrupted] [--eval-only] [--length-only]``; results in
``runs/domains/results.json`` (merged per corpus). ``--old-corrupted`` also scores the ``corrupted``
detector of the last commit (``git show HEAD:...``) on the same texts: the "before" column.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.bench_scan import flags_of, near_duplicate_membership
from pipelines.build_domains import OUT, SIZES, build
from uimdata.evaluate import duplicate_scores, membership_prf, set_prf

ROOT = Path(__file__).resolve().parents[1]


def _prf(flagged: set, truth: set) -> dict:
    return set_prf(flagged, truth).row()


def _recall_by_kind(flagged: set, truth: pl.DataFrame) -> dict:
    return {k: round(len(set(g["id"]) & flagged) / max(g.height, 1), 3)
            for (k,), g in sorted(truth.group_by("kind"), key=lambda kv: kv[0])}


def scan_corpus(name: str, corpus: Path) -> tuple[Path, dict, float]:
    from uimdata.executors.local import LocalExecutor
    from uimdata.scan import ScanConfig, scan

    run = OUT / f"run-{name}"
    start = time.perf_counter()
    res = scan(ScanConfig(corpus=str(corpus), out=str(run), embedding_col="embedding"), LocalExecutor(progress=False))
    return run, res.timings, time.perf_counter() - start


def evaluate(name: str, df: pl.DataFrame, truth: pl.DataFrame, flags: pl.DataFrame, run: Path) -> dict:
    out: dict = {}
    planted = set(truth["id"])
    bad = truth.filter(pl.col("defect") == "corrupted")
    fl = flags.join(df.select("id", "text"), on="id")
    corrupted = set(fl.filter(pl.col("is_corrupted_issue"))["id"])
    lowq = set(fl.filter(pl.col("is_low_quality_issue"))["id"]) if "is_low_quality_issue" in fl.columns else set()
    out["corrupted"] = _prf(corrupted, set(bad["id"]))
    out["corrupted_recall_by_kind"] = _recall_by_kind(corrupted, bad)
    clean = fl.filter(~pl.col("id").is_in(list(planted)))
    n_clean = clean.height
    out["clean_rows"] = n_clean
    out["clean_flagged"] = {
        "corrupted": round(len(corrupted - planted) / n_clean, 4),
        "low_quality": round(len(lowq - planted) / n_clean, 4),
        "corrupted_or_low_quality": round(len((corrupted | lowq) - planted) / n_clean, 4),
        "n_corrupted": len(corrupted - planted), "n_low_quality": len(lowq - planted),
    }
    cols = ["id", "corrupted_rule", "corrupted_reason"] + (
        ["low_quality_rule", "low_quality_reason"] if "low_quality_rule" in fl.columns else [])
    hand = clean.filter(pl.col("is_corrupted_issue") | (pl.col("is_low_quality_issue")
                                                         if "is_low_quality_issue" in fl.columns else pl.lit(False)))
    hand.select(*cols, pl.col("text").str.slice(0, 300)).write_csv(OUT / f"{name}_clean_flags.csv")
    if "is_low_quality_issue" in fl.columns:
        out["low_quality_planted"] = _recall_by_kind(lowq, bad)
    dup = {k: v.row() for k, v in duplicate_scores(flags, truth).items()}
    out.update(dup)
    out["near_duplicate_membership"] = near_duplicate_membership(flags, truth)
    # natural near duplicates: flagged rows that are not planted, next to their kept member, for a hand
    # check (runs/domains/<corpus>_natural_near_dups.csv); the ones >= 0.9 similar (Indel, raw text)
    # are templated copies the base's deduplication missed (checked by hand: "gcloud alpha X" / "gcloud
    # beta X" pages, -dev / -doc package pairs) and count as correct in ``near_duplicate_with_natural``
    from rapidfuzz.distance import Indel

    text_of = dict(zip(df["id"].to_list(), df["text"].to_list()))
    in_planted_pair = planted | set(truth["source_id"].drop_nulls())
    nd = flags.filter(pl.col("is_near_duplicate_issue") & ~pl.col("id").is_in(list(in_planted_pair)))
    nat = [(i, k, round(Indel.normalized_similarity(text_of[i], text_of[k]), 3), text_of[i][:200], text_of[k][:200])
           for i, k in nd.select("id", "near_duplicate_of").rows()]
    pl.DataFrame(nat, schema=["id", "kept", "similarity", "text", "kept_text"], orient="row").write_csv(
        OUT / f"{name}_natural_near_dups.csv")
    n_nat = sum(1 for x in nat if x[2] >= 0.9)
    d = dup["near_duplicate"]
    tp_p = round(d["precision"] * d["flagged"])
    # planted corrupted rows are made from a row of the corpus (mojibake, markup or U+FFFD of it): a
    # near copy of that row too; they are ``corrupted`` first and left out of this precision
    n_bad_copies = flags.filter(pl.col("is_near_duplicate_issue") & pl.col("id").is_in(list(bad["id"]))).height
    p_nat = (tp_p + n_nat) / max(d["flagged"] - n_bad_copies, 1)
    out["near_duplicate_with_natural"] = {
        "natural_flagged": len(nat), "natural_similar_ge_0.9": n_nat, "corrupted_copies": n_bad_copies,
        "precision": round(p_nat, 4),
        "recall": d["recall"], "f1": round(2 * p_nat * d["recall"] / max(p_nat + d["recall"], 1e-9), 4)}
    ood = truth.filter(pl.col("defect") == "ood")
    outl = set(flags.filter(pl.col("is_outlier_issue"))["id"])
    out["outlier"] = _prf(outl, set(ood["id"]))
    out["outlier_recall_by_kind"] = _recall_by_kind(outl, ood)
    out["outlier_clean_flagged"] = len(outl - planted)
    if "is_label_issue" in flags.columns:
        noisy = set(truth.filter(pl.col("defect") == "label_noise")["id"])
        lab = flags.filter(~pl.col("id").is_in(list(ood["id"])))
        out["label"] = _prf(set(lab.filter(pl.col("is_label_issue"))["id"]), noisy)
        out["label_planted_rate"] = round(len(noisy) / lab.height, 4)
        meta = json.loads((run / "meta.json").read_text()) if (run / "meta.json").exists() else {}
        summ = next((s for s in meta.get("summary", []) if s.get("issue") == "label"), {})
        out["label_noise_estimate"] = {k: summ.get(k) for k in summ if "noise" in k}
    return out


def datalab(df: pl.DataFrame, truth: pl.DataFrame, run: Path) -> dict:
    import pyarrow.parquet as pq
    from cleanlab import Datalab

    from uimdata.stages.ingest import text_hash

    emb = np.asarray(df["embedding"].to_list(), dtype=np.float32)
    data = {"text": df["text"].to_list()}
    kwargs: dict = {"features": emb}
    labelled = "label" in df.columns
    if labelled:
        pp = pq.read_table(run / "pred_probs.parquet")
        classes = pp.schema.metadata[b"classes"].decode().split("\x1f")
        data["label"] = df["label"].to_list()
        kwargs["pred_probs"] = np.asarray(pp.column("pred_probs").to_pylist(), dtype=np.float64)
    start = time.perf_counter()
    lab = Datalab(data=data, label_name="label" if labelled else None, verbosity=0)
    if labelled:
        assert [str(c) for c in lab.class_names] == classes, "class order differs"
    lab.find_issues(**kwargs)
    out: dict = {"seconds": round(time.perf_counter() - start, 1)}
    ids = np.array(df["id"].to_list())
    ood = truth.filter(pl.col("defect") == "ood")
    outl = set(ids[lab.get_issues("outlier")["is_outlier_issue"].to_numpy()])
    out["outlier"] = _prf(outl, set(ood["id"]))
    out["outlier_recall_by_kind"] = _recall_by_kind(outl, ood)
    nd = lab.get_issues("near_duplicate")
    hashes = [text_hash(t) for t in df["text"].to_list()]
    counts = pl.Series(hashes).value_counts().filter(pl.col("count") > 1)
    in_exact = set(counts[:, 0].to_list())
    member = {ids[i] for i in np.flatnonzero(nd["is_near_duplicate_issue"].to_numpy()) if hashes[i] not in in_exact}
    pairs = truth.filter(pl.col("defect") == "near_duplicate").select("id", "source_id").rows()
    out["near_duplicate_membership"] = membership_prf(member, pairs, exact_ids=set()).row()
    if labelled:
        noisy = set(truth.filter(pl.col("defect") == "label_noise")["id"])
        li = lab.get_issues("label")["is_label_issue"].to_numpy()
        keep = ~np.isin(ids, ood["id"].to_list())
        out["label"] = _prf(set(ids[li & keep]), noisy)
    return out


def old_corrupted(texts: list[str | None], truth: pl.DataFrame, ids: list[str]) -> dict:
    """The ``corrupted`` detector of the last commit on the same texts (the "before" figures)."""
    import importlib.util
    import tempfile

    src = subprocess.run(["git", "show", "HEAD:uimdata/detectors/corrupted.py"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.replace("@register\n", "")
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location("old_corrupted", f.name)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["old_corrupted"] = mod
    spec.loader.exec_module(mod)
    det = mod.CorruptedDetector()
    flagged = {i for i, t in zip(ids, texts, strict=True) if det.check(t)[0] is not None}
    planted = set(truth["id"])
    bad = truth.filter(pl.col("defect") == "corrupted")
    n_clean = len(ids) - len(planted)
    return {"corrupted": _prf(flagged, set(bad["id"])), "corrupted_recall_by_kind": _recall_by_kind(flagged, bad),
            "clean_flagged": round(len(flagged - planted) / n_clean, 4), "n_clean_flagged": len(flagged - planted)}


def bench(name: str, with_datalab: bool = True, with_old: bool = False) -> dict:
    corpus, truth_path = build(name)
    df = pl.read_parquet(corpus)
    truth = pl.read_parquet(truth_path)
    run, timings, seconds = scan_corpus(name, corpus)
    flags = flags_of(run)
    res: dict = {"rows": df.height, "mean_chars": round(float(df["text"].str.len_chars().mean()), 1),
                 "scan_seconds": round(seconds, 2),
                 "stages": {k: round(v["seconds"], 2) for k, v in timings.items()}}
    res["ms_per_row_after_embedding"] = round(1000 * seconds / df.height, 3)
    res["ms_per_1000_chars"] = round(1000 * seconds / (df["text"].str.len_chars().sum() / 1000), 3)
    res["uimdata"] = evaluate(name, df, truth, flags, run)
    if with_old:
        res["old_corrupted"] = old_corrupted(df["text"].to_list(), truth, df["id"].to_list())
    if with_datalab:
        res["datalab"] = datalab(df, truth, run)
    return res


def length_cost(rows: int = 1300, long_chars: int = 4000, short_chars: int = 100, repeats: int = 3) -> dict:
    """Scan cost per row against text length, everything else equal: ``rows`` texts of ``long_chars``
    characters (clean technical documents of the techdocs corpus, consecutive ones joined and cut) and
    the same rows cut to their first ``short_chars`` characters, both with the same given embeddings
    (the first document's), unlabelled, default detectors, each scanned ``repeats`` times (the median
    run counts). The ratio of the two per-row times is the "long documents at the speed of short ones"
    figure."""
    corpus, truth_path = build("techdocs")
    df = pl.read_parquet(corpus)
    df = df.filter(~pl.col("id").is_in(pl.read_parquet(truth_path)["id"].to_list()))
    texts, embs, current, first = [], [], [], None
    for text, emb in zip(df["text"].to_list(), df["embedding"].to_list()):
        current.append(text)
        first = emb if first is None else first
        if sum(len(t) + 2 for t in current) >= long_chars:
            texts.append("\n\n".join(current)[:long_chars])
            embs.append(first)
            current, first = [], None
            if len(texts) == rows:
                break
    repeats = max(1, repeats)
    out: dict = {"rows": len(texts), "repeats": repeats}
    # the first scan of a process pays one-off imports (torch in the index stage): a warm-up scan first;
    # then long and short in turn, ``repeats`` times, and the median of each (single runs of the short
    # scan, 1-3 s on shared cores, varied by 2x)
    runs: dict[str, list] = {"long": [], "short": []}
    plan = [("warm-up", short_chars)] + [(tag, cut) for _ in range(repeats)
                                         for tag, cut in (("long", long_chars), ("short", short_chars))]
    for tag, cut in plan:
        part = pl.DataFrame({"id": [f"{tag}-{i:05d}" for i in range(len(texts))], "text": [t[:cut] for t in texts],
                             "embedding": pl.Series(embs, dtype=df.schema["embedding"])})
        path = OUT / f"length-{tag}.parquet"
        part.write_parquet(path)
        _, timings, seconds = scan_corpus(f"length-{tag}", path)
        if tag == "warm-up":
            continue
        runs[tag].append((1000 * seconds / part.height, timings))
        out[tag] = {"mean_chars": round(float(part["text"].str.len_chars().mean()), 1)}
    for tag, done in runs.items():
        ms, timings = sorted(done, key=lambda r: r[0])[len(done) // 2]  # the median run (upper middle if even)
        out[tag].update(ms_per_row=round(ms, 3), ms_per_row_runs=[round(r[0], 3) for r in done],
                        stages={k: round(v["seconds"], 2) for k, v in timings.items()})
    out["ratio"] = round(out["long"]["ms_per_row"] / out["short"]["ms_per_row"], 2)
    return out


def reevaluate(name: str) -> dict:
    """Score an existing run again (``--eval-only``): the scan's timings and Datalab are kept."""
    corpus, truth_path = build(name)
    run = OUT / f"run-{name}"
    return evaluate(name, pl.read_parquet(corpus), pl.read_parquet(truth_path), flags_of(run), run)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", metavar="CORPUS", help=f"of {', '.join(SIZES)} (default: all)")
    ap.add_argument("--no-datalab", action="store_true", help="skip cleanlab Datalab")
    ap.add_argument("--old-corrupted", action="store_true", help="also score HEAD's corrupted detector")
    ap.add_argument("--eval-only", action="store_true", help="score the existing runs again")
    ap.add_argument("--length-only", action="store_true", help="only the cost-against-length measurement")
    a = ap.parse_args()
    args = a.names
    if a.eval_only:
        path = OUT / "results.json"
        results = json.loads(path.read_text())
        for name in args or list(results):
            results[name]["uimdata"] = reevaluate(name)
        path.write_text(json.dumps(results, indent=1))
        return
    names = [] if a.length_only else args or list(SIZES)
    path = OUT / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if a.length_only or not args:
        print("[length] scanning", file=sys.stderr, flush=True)
        results["length_cost"] = length_cost()
        path.write_text(json.dumps(results, indent=1))
        print(json.dumps({"length_cost": results["length_cost"]}, indent=1))
    for name in names:
        print(f"[{name}] scanning", file=sys.stderr, flush=True)
        results[name] = bench(name, not a.no_datalab, a.old_corrupted)
        path.write_text(json.dumps(results, indent=1))
        print(json.dumps({name: results[name]}, indent=1))


if __name__ == "__main__":
    main()
