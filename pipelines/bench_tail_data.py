"""Corpora behind the tail-aware curation benchmark (``pipelines/bench_tail.py``, part of ``make bench``).

Two labelled real corpora of different kinds, each with a natural long tail of classes:

* ``debian``: short technical texts, ``"<package>: <short description>"`` of the Debian packages the
  machine's APT lists know (``apt-cache dumpavail``, else ``/var/lib/dpkg/status``), label = the
  ``Section`` (without its ``contrib/`` / ``non-free/`` area; 58 sections, long-tailed);
* ``wordnet``: WordNet glosses (``uimdata/data/wordnet``), label = the lexicographer file (45 classes).

Each is a deterministic stratified sample (every class keeps ``max(floor, frac x its size)`` rows, at
most all of them), split by row into a pre-training corpus (80 %), a dev split for ``uim link`` (10 %)
and a test split for evaluation only (10 %). Planted in the pre-training part: a poisoned concept
(85 % of a fine-grained k-means cluster of one class gets the nearest other class), 8 % label noise
(half uniform, half confusable), 1.5 % other-language and 1.5 % other-domain rows, near duplicates
(3 %), exact duplicates (1.5 %) and corrupted rows (1.5 %). The downstream model is ``uim probe``'s
softmax regression trained on the raw pre-training corpus; its predictions go to dev and test.

Embeddings (all-MiniLM-L6-v2) come from uimdata's embedding cache (``bench_data.embed_cached``):
slow once (about 100 texts/s on 2 cores), instant afterwards. Files land in ``runs/bench/tail-<name>/``
(gitignored). ``python -m pipelines.bench_tail_data [debian|wordnet]`` builds them.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.bench_data import GLOSSES, OUT
from pipelines.bench_link_data import plant_loop_defects, write_loop_corpus

SIZES = {"debian": (22_000, 40), "wordnet": (12_000, 40)}   # rows, per-class floor


def debian_packages() -> pl.DataFrame:
    """Every package APT knows: text = ``package: short description``, label = the section."""
    try:
        raw = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        raw = Path("/var/lib/dpkg/status").read_text(errors="replace")
    rows, seen = [], set()
    for block in raw.split("\n\n"):
        f = {}
        for line in block.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            k, _, v = line.partition(":")
            f.setdefault(k, v.strip())
        pkg, desc, sec = f.get("Package"), f.get("Description"), f.get("Section")
        if not pkg or not desc or not sec or pkg in seen:
            continue
        seen.add(pkg)
        rows.append((f"{pkg}: {desc}", sec.rsplit("/", 1)[-1]))
    df = pl.DataFrame(rows, schema={"text": pl.Utf8, "label": pl.Utf8}, orient="row")
    return df.unique("text", keep="first", maintain_order=True).sort("text")


def stratified(df: pl.DataFrame, n: int, floor: int, seed: int = 0) -> pl.DataFrame:
    """About ``n`` rows: each class ``max(floor, frac x size)`` rows (all of a smaller class)."""
    counts = df["label"].value_counts().sort("label")
    sizes = counts["count"].to_numpy().astype(float)
    lo, hi = 0.0, 1.0
    for _ in range(50):  # the fraction that gives n rows in all
        mid = (lo + hi) / 2
        tot = np.minimum(sizes, np.maximum(floor, np.round(mid * sizes))).sum()
        lo, hi = (mid, hi) if tot < n else (lo, mid)
    take = np.minimum(sizes, np.maximum(floor, np.round(hi * sizes))).astype(int)
    rng = np.random.default_rng(seed)
    parts = []
    for lab, k in zip(counts["label"].to_list(), take):
        rows = df.filter(pl.col("label") == lab)
        parts.append(rows[np.sort(rng.choice(rows.height, size=int(k), replace=False)).tolist()])
    out = pl.concat(parts)
    return out[rng.permutation(out.height).tolist()]


def base_frame(name: str) -> pl.DataFrame:
    n, floor = SIZES[name]
    src = debian_packages() if name == "debian" else pl.read_parquet(GLOSSES, columns=["text", "label"])
    return stratified(src, n, floor)


def tail_corpus(name: str, seed: int = 0) -> dict[str, Path]:
    from uimdata.synth import plant_all

    d = OUT / f"tail-{name}"
    paths = {k: d / f"{k}.parquet" for k in ("corpus", "truth", "dev", "test")}
    if all(p.exists() for p in paths.values()):
        return paths
    d.mkdir(parents=True, exist_ok=True)
    base = base_frame(name).with_row_index("id").with_columns(pl.format(name[0] + "-{}", pl.col("id")).alias("id"))
    base, train, parts, concept, rng = plant_loop_defects(base, seed, concept_seed=seed + 2)
    n0 = int((base["split"] == "train").sum())  # train rows before the OOD rows were added
    train, t = plant_all(train, n_exact=int(0.015 * n0), n_near=int(0.03 * n0), n_corrupted=int(0.015 * n0),
                         rng=rng)
    parts.append(t.select("id", "defect", "kind", "source_id"))
    write_loop_corpus(d, paths, train, base, parts, concept)
    return paths


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"corpora, of {', '.join(SIZES)} (default: all)")
    for nm in ap.parse_args().names or list(SIZES):
        p = tail_corpus(nm)
        print(nm, {k: str(v) for k, v in p.items()}, (p["corpus"].parent / "concept.json").read_text())
